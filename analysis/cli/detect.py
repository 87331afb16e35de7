"""Commands that run the detector: scan, eval, reanalyze."""

from __future__ import annotations

import json
from functools import partial

import click

from analysis.cli.options import db_option, format_option, format_rows, open_db, workers_option


@click.command()
@click.argument("paths", nargs=-1, required=True)
@format_option()
@workers_option
def scan(paths, fmt, workers):
    """Flag claims in saved pages: .html, .htm, .txt files or folders of them.

    Files with no claims print nothing. A file that cannot be read is named
    on stderr, the others are still scanned, and the exit code is non-zero.

    Example: stemwatch scan page.html
    """
    from analysis.detect.scan import claim_record, format_table, scan_paths

    failed = 0
    whole = []  # json and csv are one document: printed at the end
    for path, analysis, error in scan_paths(paths, workers=workers):
        if error:
            failed += 1
            click.echo(f"error: {path}: {error}", err=True)
            continue
        records = [claim_record(path, analysis, c) for c in analysis.claims]
        if fmt in ("json", "csv"):
            whole.extend(records)
        elif records:
            click.echo(format_rows(records, fmt, format_table))
    if fmt in ("json", "csv") and (whole or fmt == "json"):
        click.echo(format_rows(whole, fmt, format_table))
    if failed:
        raise click.ClickException(f"{failed} path(s) could not be scanned")


@click.command("eval")
@click.argument("corpus", type=click.Path(dir_okay=False))
@click.option("--show-errors", is_flag=True, help="List the passages scored wrong, with the claims made or missed")
@click.option("--cv-by-domain", "folds", type=click.IntRange(2, 20),
              help="Cross-validate the learned stage by site in this many folds: train on the others, "
                   "score the held fold; rules, rules+model and the keyword baseline side by side")
@click.option("--seed", default=0, show_default=True, help="Seed of the fold split, the training and the bootstrap")
@click.option("--rules-only", is_flag=True, help="Score the rules without the learned stage")
@format_option(("table", "json"))
def eval_cmd(corpus, show_errors, folds, seed, rules_only, fmt):
    """Score the detector on a labelled corpus (JSON lines), next to a keyword baseline.

    A detector whose model was trained on CORPUS is not measured by it: the
    report says so. --cv-by-domain K gives scores on sites the model never saw.

    \b
    Example: stemwatch eval data/corpus/passages.jsonl --cv-by-domain 5
    """
    from analysis.detect.crossval import cross_validate, format_cv_report
    from analysis.detect.detector import Detector, get_detector
    from analysis.detect.evaluate import evaluate, format_report, load_corpus

    try:
        if folds:
            report = cross_validate(load_corpus(corpus), folds, Detector(model_dir=None), seed=seed,
                                    progress=lambda line: click.echo(line, err=True))
            text = format_cv_report
        else:
            report = evaluate(corpus, Detector(model_dir=None) if rules_only else get_detector())
            text = partial(format_report, show_errors=show_errors)
    except (OSError, ValueError, KeyError) as e:
        raise click.ClickException(f"{corpus}: {e}")
    click.echo(json.dumps(report, indent=1, ensure_ascii=False, default=str) if fmt == "json" else text(report))


@click.command()
@click.argument("corpus", type=click.Path(dir_okay=False, exists=True))
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Model folder to write  [default: data/model, the one the project ships]")
@click.option("--seed", default=0, show_default=True, help="Training seed: the same corpus and seed give the same model")
def train(corpus, out_dir, seed):
    """Train the learned stage (page kind and claim decision) on a labelled corpus.

    Uses spaCy's own training (configs in data/model/*.cfg), CPU only. The
    model records the corpus hash, the seed and the threshold it chose.

    \b
    Example: stemwatch train data/corpus/passages.jsonl
    """
    from analysis.detect.detector import Detector
    from analysis.detect.evaluate import load_corpus
    from analysis.detect.learned import DEFAULT_MODEL_DIR
    from analysis.detect.training import corpus_hash, train as run

    try:
        meta = run(load_corpus(corpus), out_dir or DEFAULT_MODEL_DIR, Detector(model_dir=None), seed=seed,
                   corpus_sha256=corpus_hash(corpus))
    except (OSError, ValueError, KeyError) as e:
        raise click.ClickException(f"{corpus}: {e}")
    click.echo(f"Model in {out_dir or DEFAULT_MODEL_DIR}: {meta['claim_examples']} candidates "
               f"({meta['claim_examples_promoted']} promoted), {meta['page_kind_examples']} page kinds, "
               f"candidate recall {meta['candidate_recall']}, threshold {meta['threshold']:g}")


@click.command()
@db_option
@click.option("--crawl", "crawl_id", type=int, help="Only the pages of this crawl")
@workers_option
@click.option("--batch", default=100, show_default=True, type=click.IntRange(1, 10000),
              help="Pages stored per transaction")
def reanalyze(db_path, crawl_id, workers, batch):
    """Detect claims again in stored pages with the current patterns.

    Only pages a different detector version read are redone (an interrupted
    run resumes); each claim records the detector version that found it.
    Reviewers' verdicts are kept: they belong to the claim's identity.

    \b
    Example: stemwatch reanalyze --db data/clinics.db --workers 2
    """
    from analysis.reanalyze import ReanalysisError, describe, reanalyze as run

    with open_db(db_path) as store:
        try:
            from analysis.detect.detector import get_detector

            detector = get_detector()
        except ImportError as e:
            raise click.ClickException(f"the claim detector is not available: {e}")

        def progress(done, total):
            click.echo(f"  {done}/{total} pages", err=True)

        try:
            result = run(store, detector, crawl_id=crawl_id, workers=workers, batch=batch, progress=progress)
        except ReanalysisError as e:
            raise click.ClickException(str(e))
    click.echo(describe(result))


COMMANDS = [scan, eval_cmd, train, reanalyze]
