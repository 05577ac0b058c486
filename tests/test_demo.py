"""`make demo` end to end: bulletin, drill with report and phone chain, ledger synced and verified, plot."""

import json

from plexus.cli import main
from plexus.ledger import Ledger


def test_demo_town(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "DRILL REPORT" in text and "verify: OK" in text
    rep = json.loads((out / "drill-report.json").read_text())
    assert rep["expected"] == 29 and rep["reached"] >= 27
    assert {r["node"] for r in rep["rows"] if r["reached_s"] is None} == {p["node"] for p in rep["phone_chain"]}
    assert all(p["contact"] for p in rep["phone_chain"])
    assert (out / "town.png").stat().st_size > 10_000
    led = Ledger(out / "ledger.sqlite")
    assert led.verify().ok
