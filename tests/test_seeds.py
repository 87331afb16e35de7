"""Seed lists: URLs and CSV files, bad rows, duplicates, unusable input."""

import pytest

from crawler.seeds import SeedError, load_seeds


def write(tmp_path, text, name="seeds.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_csv_keeps_metadata_and_reports_bad_rows_with_line_numbers(tmp_path):
    path = write(tmp_path, (
        "url,name,country,state,notes,tier\n"
        "https://www.clinic-one.com/,Clinic One,US,FL,seen in ads,gold\n"
        "ftp://files.example/,Bad scheme,,,,\n"
        ",No url,,,,\n"
        "clinic-two.com,Clinic Two,MX,,,\n"
        "not a url,Broken,,,,\n"
    ))
    seeds, problems = load_seeds([path])
    assert [s["url"] for s in seeds] == ["https://www.clinic-one.com/", "http://clinic-two.com/"]
    one = seeds[0]
    assert (one["name"], one["country"], one["state"], one["notes"], one["tier"]) == (
        "Clinic One", "US", "FL", "seen in ads", "gold")
    assert one["site"] == "clinic-one.com"
    assert any(p.startswith(f"{path}:3:") and "not an http(s) URL" in p for p in problems)
    assert any(p.startswith(f"{path}:4:") and "empty url" in p for p in problems)
    assert any(p.startswith(f"{path}:6:") and "'not a url' is not a URL" in p for p in problems)


def test_duplicates_collapse_by_site_and_canonical_url(tmp_path):
    path = write(tmp_path, "url,name\nhttps://clinic.com/?utm_source=x,First\nhttps://www.clinic.com/about,Second\n")
    seeds, problems = load_seeds([path, "https://clinic.com/#top", "https://other.org/"])
    assert [s["site"] for s in seeds] == ["clinic.com", "other.org"]
    assert seeds[0]["name"] == "First"
    assert seeds[0]["url"] == "https://clinic.com/"
    assert seeds[0]["extra_urls"] == ["https://www.clinic.com/about"]
    assert sum("duplicate" in p for p in problems) == 2


def test_ip_hosts_are_one_site_per_port():
    seeds, _ = load_seeds(["http://127.0.0.1:8101/", "http://127.0.0.1:8102/a", "http://127.0.0.1:8101/b"])
    assert [s["site"] for s in seeds] == ["127.0.0.1:8101", "127.0.0.1:8102"]


@pytest.mark.parametrize("args, message", [
    ([], "no seeds given"),
    ([""], "empty seed"),
    (["missing/seeds.csv"], "no such seed file"),
    (["notaurl"], "neither a seed file nor a URL"),
    (["http://"], "bad seed URL"),
])
def test_unusable_input_raises(args, message):
    with pytest.raises(SeedError, match=message):
        load_seeds(args)


def test_csv_without_url_column_or_empty(tmp_path):
    with pytest.raises(SeedError, match="no 'url' column"):
        load_seeds([write(tmp_path, "name,country\nA,US\n")])
    with pytest.raises(SeedError, match="is empty"):
        load_seeds([write(tmp_path, "", "empty.csv")])
    with pytest.raises(SeedError, match="no usable seed"):
        load_seeds([write(tmp_path, "url\nnot a url\n", "bad.csv")])


# (seed, the problem named) -- each refused with a reason, never dropped without a word
REFUSED_SEEDS = [
    ("https://clinic.example.org/" + "a" * 1000, "characters long; the crawl fetches no URL over 1000"),
    ("https://user:secret@clinic.example.org/", "user name or password"),
    ("https://user@clinic.example.org/", "user name or password"),
]


@pytest.mark.parametrize("url,problem", REFUSED_SEEDS)
def test_seeds_that_could_not_be_crawled_are_refused_with_the_reason(url, problem):
    with pytest.raises(SeedError, match=problem):
        load_seeds([url])


def test_an_ipv6_seed_keeps_its_brackets_and_its_site():
    seeds, _ = load_seeds(["http://[::1]:18091/"])
    assert seeds[0]["url"] == "http://[::1]:18091/" and seeds[0]["site"] == "[::1]:18091"


def test_many_rows_of_one_site_load_in_linear_time_with_a_summed_warning(tmp_path):
    path = tmp_path / "seeds.csv"
    path.write_text("url\n" + "".join(f"https://clinic.example.org/p{i}\n" for i in range(100_000)))
    seeds, problems = load_seeds([str(path)])
    assert len(seeds) == 1 and len(seeds[0]["extra_urls"]) == 99_999
    assert len(problems) == 4 and "99996 more rows of site example.org" in problems[-1]
