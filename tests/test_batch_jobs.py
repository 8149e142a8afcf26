"""Jobs files -> jobs: the three formats, sweeps, names, defaults; a bad file is one line and exit 2."""

from __future__ import annotations

import json

import pytest

from clipgan.batch.jobs import Job, make_jobs, parse_seeds, slug
from clipgan.cli import main
from clipgan.errors import ClipganError


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_text_file_one_job_a_line_comments_and_blanks_skipped(tmp_path):
    path = write(tmp_path, "jobs.txt", "# my list\na red circle | a blue square:0.5\n\n  a green star  \n")
    jobs = make_jobs(path)
    assert [j.prompts for j in jobs] == [["a red circle | a blue square:0.5"], ["a green star"]]
    assert [j.kind for j in jobs] == ["generate", "generate"]
    assert jobs[1].output == f"a-green-star-s{jobs[1].seed}.png"


def test_seeds_are_stable_across_reads_so_a_rerun_names_the_same_outputs(tmp_path):
    path = write(tmp_path, "jobs.txt", "a red circle\na red circle\n")
    first, again = make_jobs(path), make_jobs(path)
    assert [j.id for j in first] == [j.id for j in again]
    assert [j.name for j in first] == ["a-red-circle", "a-red-circle-2"]  # same prompt twice: two jobs
    assert first[0].seed != first[1].seed


def test_seed_sweep_and_repeat(tmp_path):
    path = write(tmp_path, "jobs.txt", "a\nb\n")
    assert [(j.name, j.seed) for j in make_jobs(path, seeds=parse_seeds("1-3"))] == \
        [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2), ("b", 3)]
    jobs = make_jobs(path, {"seed": 10}, repeat=2)
    assert [(j.name, j.seed) for j in jobs] == [("a", 10), ("a", 11), ("b", 10), ("b", 11)]


@pytest.mark.parametrize("text,seeds", [("1-8", list(range(1, 9))), ("3", [3]), ("1,5,10-12", [1, 5, 10, 11, 12]),
                                        ("2,2,1-2", [2, 1])])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "5-2", "1-", "-3", "1-999999999"])
def test_parse_seeds_refuses(text):
    with pytest.raises(ClipganError):
        parse_seeds(text)


def test_jsonl_jobs_of_every_kind_with_flag_defaults_under_them(tmp_path):
    rows = [{"prompts": "a red circle", "cutn": 8},
            {"kind": "morph", "prompts": ["a", "b"], "frames_per_transition": 3, "name": "My Morph!", "fps": 12},
            {"kind": "zoom", "prompts": "a star", "frames": 4, "seed": 7}]
    path = write(tmp_path, "jobs.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    jobs = make_jobs(path, {"cutn": 4, "iterations": 5, "steps_per_frame": 2})
    g, m, z = jobs
    assert g.settings == {"cutn": 8, "iterations": 5} and g.options == {}  # the row wins; a morph default is not generate's
    assert (m.name, m.kind, m.prompts, m.fps) == ("my-morph", "morph", ["a", "b"], 12)
    assert m.options == {"frames_per_transition": 3, "steps_per_frame": 2}
    assert (z.seed, z.options, z.output) == (7, {"frames": 4, "steps_per_frame": 2}, "a-star-s7.mp4")
    assert Job.from_dict(m.to_dict()) == m


def test_csv_cells_become_typed_values(tmp_path):
    path = write(tmp_path, "jobs.csv", 'prompts,size,iterations,lr,augments,kind,frames\n'
                                       '"a red circle, big",96x64,20,0.05,"flip,jitter",,\n'
                                       '"[""a"", ""b""]",,,,,morph,\n'
                                       'a star,,,,,zoom,4\n')
    a, b, c = make_jobs(path)
    assert a.prompts == ["a red circle, big"]
    assert a.settings == {"size": [96, 64], "iterations": 20, "lr": 0.05, "augments": "flip,jitter"}
    assert (b.kind, b.prompts) == ("morph", ["a", "b"])
    assert (c.kind, c.options) == ("zoom", {"frames": 4})


def test_slug():
    assert slug("A Red Circle: on blue!") == "a-red-circle-on-blue"
    assert slug("!!!") == "job"
    assert len(slug("x" * 100)) == 40


@pytest.mark.parametrize("name,text,message", [
    ("jobs.jsonl", '{"prompts": "a"}\n{"prompts": \n', "jobs.jsonl:2: not valid JSON"),
    ("jobs.jsonl", '["a"]\n', "a job must be a JSON object"),
    ("jobs.jsonl", '{"prompts": "a", "colour": 1}\n', "unknown field(s): colour"),
    ("jobs.jsonl", '{"prompts": "a", "kind": "paint"}\n', "unknown kind 'paint'"),
    ("jobs.jsonl", '{"prompts": "a", "frames": 3}\n', "generate has no field(s) frames"),
    ("jobs.jsonl", '{"iterations": 3}\n', "the job has no prompts"),
    ("jobs.jsonl", '{"prompts": 5}\n', "prompts must be a string or a list"),
    ("jobs.csv", "prompts,,x\na,b,c\n", "the first row must name every column"),
    ("jobs.txt", "# only a comment\n\n", "holds no jobs"),
])
def test_bad_jobs_file_is_one_line_and_exit_2(tmp_path, capsys, name, text, message):
    path = write(tmp_path, name, text)
    with pytest.raises(SystemExit) as exit_:
        main(["batch", str(path), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2
    assert err.startswith("error: ") and message in err and "\n" not in err, err
    assert not (tmp_path / "out").exists()  # nothing made before the file is known good


def test_missing_jobs_file_bad_seeds_and_unknown_set(tmp_path, capsys):
    good = write(tmp_path, "jobs.txt", "a\n")
    for args, message in [([str(tmp_path / "nope.txt")], "jobs file not found"),
                          ([str(good), "--seeds", "x"], "--seeds 'x'"),
                          ([str(good), "--seeds", "1-2", "--repeat", "2"], "not both"),
                          ([str(good), "--set", "colour=red"], "unknown field(s): colour"),
                          ([str(good), "--set", "novalue"], "write key=value")]:
        with pytest.raises(SystemExit) as exit_:
            main(["batch", *args, "-o", str(tmp_path / "out")])
        err = capsys.readouterr().err.strip()
        assert exit_.value.code == 2 and message in err and "\n" not in err, err
