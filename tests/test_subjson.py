import json

from auditor.load.subjson import parse_submission_json


def parse(obj_or_text):
    data = obj_or_text if isinstance(obj_or_text, bytes) else json.dumps(obj_or_text).encode()
    return parse_submission_json("submission.json", data)


def test_plain_claim():
    m = parse({"name": "x", "author": "a", "github_id": "g", "val_bpb": 1.0811, "val_loss": 2.79,
               "seeds": [42, 1337, 2025], "bytes_total": 15_900_000, "bytes_code": 30_000})
    assert (m.val_bpb, m.val_bpb_source, m.seeds, m.bytes_total, m.bytes_code) == \
        (1.0811, "val_bpb", [42, 1337, 2025], 15_900_000, 30_000)
    assert not [f for f in m.issues if f.severity != "info"]


def test_val_bpb_falls_back_to_seed_mean_and_string_seed_keys():
    m = parse({"seed_results": {"1": {"val_bpb": 1.0, "artifact_bytes": 15_000_000},
                                "2": {"val_bpb": 1.2, "artifact_bytes": 15_500_000}}})
    assert m.val_bpb == 1.1 and m.val_bpb_source == "mean of per-seed val_bpb"
    assert m.seeds == [1, 2] and m.bytes_total == 15_500_000


def test_seeds_as_dict():
    m = parse({"val_bpb": 1.07, "seeds": {"42": {"val_bpb": 1.06}, "7": {"val_bpb": 1.08}}})
    assert m.seeds == [7, 42] and m.seed_results[42]["val_bpb"] == 1.06


def test_mean_val_bpb_key():
    m = parse({"mean_val_bpb": 1.15})
    assert m.val_bpb == 1.15 and m.val_bpb_source == "mean_val_bpb"
    assert any("mean_val_bpb" in f.message for f in m.issues)


def test_truncated_json_is_a_parse_error():
    m = parse(b'{"val_bpb": 1.0, "name": ')
    assert m.parse_error.startswith("not valid JSON") and m.raw is None


def test_duplicate_keys_nan_and_wrong_types_are_reported():
    m = parse(b'{"val_bpb": NaN, "val_bpb": 1.5, "bytes_total": "15MB", "seeds": [1, "x"]}')
    msgs = " | ".join(f.message for f in m.issues)
    assert "appears more than once" in msgs and "NaN" in msgs and "bytes_total" in msgs
    assert m.val_bpb == 1.5 and m.bytes_total is None and m.seeds == [1]


def test_top_level_array_is_rejected():
    assert parse(b"[1, 2]").parse_error == "top level is a list, not an object"


def test_key_lines_point_into_the_file():
    text = b'{\n  "name": "x",\n  "val_bpb": 1.1\n}\n'
    assert parse(text).line_of["val_bpb"] == 3
