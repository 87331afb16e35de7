cdef class PageIndex:
    cdef public object doc, text, labels, _title_fn, _title, headings, candidates, candidate_sentences
    cdef public object _candidate_sents, starts, outside, bounds, cues, claimed, _cue_starts
    cdef public list _by_sent, _line_info, headings_of, _facts
    cdef public dict _by_label, _sentence_firsts, answers
    cdef public object _cues_of, sentence_labels, _sentence_cues
    cdef public Py_ssize_t n
    cpdef list cues_in(self, Py_ssize_t si)
    cpdef dict by_label(self, str label)
    cpdef first(self, str label, Py_ssize_t si)
    cpdef dict _matched_in(self, Py_ssize_t si)
    cpdef title_labels(self)
    cpdef tuple word_bounds(self, Py_ssize_t si)
    cpdef bint is_question(self, Py_ssize_t si)
    cpdef tuple facts(self, Py_ssize_t si)
    cpdef bint _ends_line(self, Py_ssize_t si)
    cpdef tuple _line(self, Py_ssize_t si)
    cpdef heading_of(self, Py_ssize_t si)
    cpdef near(self, rule, Py_ssize_t si, Py_ssize_t start, Py_ssize_t end)
    cpdef _find(self, rule, str scope, Py_ssize_t si, heading, str category)
    cpdef _has(self, Py_ssize_t si, rule)
