"""Fail loudly, lose nothing (csfair issue 21): each silent fault of the issue reproduced on real data,
and the loud behaviour that replaced it. See docs/guarantees.md."""
import errno
import json
import os
import shutil
import warnings

import numpy as np
import pytest

from conftest import ROOT


# ------------------------------------------------------------------ results files (silent case 4)

def _real_records(n=3):
    with open(ROOT / "results" / "zeroshot" / "results.jsonl", encoding="utf-8") as fh:
        return [json.loads(next(fh)) for _ in range(n)]


def test_append_cut_short_by_a_full_disk_loses_no_record(tmp_path, monkeypatch):
    from csfair.evaluation import results as R

    path = tmp_path / "results.jsonl"
    a, b, c = _real_records()
    R.append_result(path, a)
    real_write = os.write
    calls = []

    def full_disk(fd, data):  # the kernel takes 100 bytes, then the disk is full
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, data[:100])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError, match=r"results.jsonl: appending a result failed \(No space left on device\)") as e:
        R.append_result(path, b)
    assert e.value.errno == errno.ENOSPC
    monkeypatch.setattr(os, "write", real_write)
    # the part-line was cut off again: the file ends with a complete line
    assert path.read_bytes().endswith(b"\n") and R.load_results(path) == [a]
    R.append_result(path, c)
    assert R.load_results(path) == [a, c]


def test_a_fragment_left_by_an_older_append_is_closed_and_skipped(tmp_path):
    from csfair.evaluation import results as R

    path = tmp_path / "results.jsonl"
    a, b, c = _real_records()
    line_b = json.dumps(b, sort_keys=True)
    # what the old append left after ENOSPC: a fragment without newline
    path.write_text(json.dumps(a, sort_keys=True) + "\n" + line_b[:57], encoding="utf-8")
    with pytest.warns(R.ResultsFileWarning, match=r"results.jsonl:2: not a complete JSON record"):
        assert R.load_results(path) == [a]
    with pytest.warns(R.ResultsFileWarning, match="ends with an incomplete line"):
        R.append_result(path, c)
    assert path.read_text(encoding="utf-8").splitlines()[1:] == [line_b[:57], json.dumps(c, sort_keys=True)]
    with pytest.warns(R.ResultsFileWarning, match=r":2: not a complete JSON record"):
        assert R.load_results(path) == [a, c]  # c is not glued to the fragment
    # a file written by the old append: fragment and next record on one line; the record is recovered
    path.write_text(json.dumps(a, sort_keys=True) + "\n" + line_b[:57] + json.dumps(c, sort_keys=True) + "\n")
    with pytest.warns(R.ResultsFileWarning, match=r":2: the 57-character fragment .* the record is kept"):
        assert R.load_results(path) == [a, c]
    # a truncated record whose tail is a nested object is not mistaken for a record
    trunc = line_b[:line_b.index('"metrics": {')] + '"metrics": {"accuracy": 0.5}'
    path.write_text(json.dumps(a, sort_keys=True) + "\n" + trunc + "\n")
    with pytest.warns(R.ResultsFileWarning, match="not a complete JSON record"):
        assert R.load_results(path) == [a]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path.write_text(json.dumps(a, sort_keys=True) + "\n")
        assert R.load_results(path) == [a]  # an intact file: no warning
