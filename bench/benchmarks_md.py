"""Replace (or append) one `## ...` section of BENCHMARKS.md: every benchmark writes only its own section."""

from pathlib import Path

PATH = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def write_section(text: str, path: Path = PATH) -> None:
    head = text.strip().splitlines()[0]
    assert head.startswith("## "), "a section starts with its '## ' heading"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if head in old:
        start = old.index(head)
        nxt = old.find("\n## ", start + len(head))
        new = old[:start] + text.strip() + "\n" + (old[nxt:] if nxt >= 0 else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text.strip() + "\n"
    path.write_text(new)
