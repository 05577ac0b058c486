"""Scenario files: load, validate and normalise (schema: docs/scenarios.md).

``load_scenario(path_or_name)`` returns a plain dict in normal form (every default filled in,
times still in seconds, node references replaced by indices), or raises ``ScenarioError`` with a
one-line message that names the offending field.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

from plexus.sim import radio

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
BUNDLED = ("town", "line", "courier", "raid", "festival")

DEFAULT_RADIO: dict[str, Any] = {
    "path_loss_exponent": 3.5,
    "shadowing_db": 4.0,
    "ref_distance_m": 1.0,
    "ref_loss_db": None,
    "fading_db": 0.0,
    "capture_db": radio.DEFAULT_CAPTURE_DB,
    "cad_symbols": 2.0,
    "lbt_jitter_ms": [0, 300],
    "courier_step_s": 5.0,
}
DEFAULT_CONFIRM = {"prob": 0.9, "delay_s": [10.0, 120.0]}


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message is one line meant for the user."""


def bundled_names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))


def resolve(path_or_name: str) -> Path:
    p = Path(path_or_name)
    if p.exists():
        return p
    if "/" not in path_or_name and not path_or_name.endswith(".json"):
        cand = SCENARIO_DIR / (path_or_name + ".json")
        if cand.exists():
            return cand
        raise ScenarioError(
            "no scenario file or bundled scenario named %r (bundled: %s)" % (path_or_name, ", ".join(bundled_names()))
        )
    raise ScenarioError("scenario file not found: %s" % path_or_name)


def load_scenario(path_or_name: str) -> dict:
    path = resolve(path_or_name)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError("cannot read scenario file %s: %s" % (path, exc)) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError("%s is not valid JSON: %s (line %d, column %d)" % (path, exc.msg, exc.lineno, exc.colno)) from None
    sc = normalize(raw)
    sc["source"] = str(path)
    return sc


# ---------------------------------------------------------------- validation helpers


def _num(v: Any, where: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ScenarioError("%s must be a number, got %r" % (where, v))
    if lo is not None and v < lo:
        raise ScenarioError("%s must be >= %s, got %r" % (where, lo, v))
    if hi is not None and v > hi:
        raise ScenarioError("%s must be <= %s, got %r" % (where, hi, v))
    return float(v)


def _int(v: Any, where: str, lo: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ScenarioError("%s must be an integer, got %r" % (where, v))
    if lo is not None and v < lo:
        raise ScenarioError("%s must be >= %d, got %r" % (where, lo, v))
    return v


def _obj(v: Any, where: str) -> dict:
    if not isinstance(v, dict):
        raise ScenarioError("%s must be an object" % where)
    return v


def _list(v: Any, where: str) -> list:
    if not isinstance(v, list):
        raise ScenarioError("%s must be a list" % where)
    return v


def _unknown(d: dict, allowed: set[str], where: str) -> None:
    extra = sorted(k for k in d if k not in allowed and not k.startswith("_"))
    if extra:
        raise ScenarioError("%s: unknown field(s) %s" % (where, ", ".join(extra)))


def _pair(v: Any, where: str, lo: float = 0.0) -> list[float]:
    v = _list(v, where)
    if len(v) != 2:
        raise ScenarioError("%s must be [low, high]" % where)
    a, b = _num(v[0], where, lo), _num(v[1], where, lo)
    if b < a:
        raise ScenarioError("%s: high < low" % where)
    return [a, b]


def _confirm(v: Any, where: str) -> dict:
    v = _obj(v, where)
    _unknown(v, {"prob", "delay_s"}, where)
    out = dict(DEFAULT_CONFIRM)
    if "prob" in v:
        out["prob"] = _num(v["prob"], where + ".prob", 0.0, 1.0)
    if "delay_s" in v:
        out["delay_s"] = _pair(v["delay_s"], where + ".delay_s")
    return out


def _modem(v: Any) -> dict:
    presets = radio.modem_presets()
    if isinstance(v, str):
        key = v.upper().replace("-", "_").replace(" ", "_")
        if key == "LONGFAST":
            key = "LONG_FAST"
        if key not in presets:
            raise ScenarioError("modem: unknown preset %r (known: %s)" % (v, ", ".join(sorted(presets))))
        sf, bw, cr, pre = presets[key]
        return {"name": key, "sf": sf, "bw_hz": bw, "cr": cr, "preamble": pre}
    v = _obj(v, "modem")
    _unknown(v, {"name", "sf", "bw_hz", "cr", "preamble"}, "modem")
    out: dict[str, Any] = {
        "name": str(v.get("name", "custom")),
        "sf": _int(v.get("sf"), "modem.sf", 6),
        "bw_hz": _int(v.get("bw_hz"), "modem.bw_hz", 1),
        "cr": _int(v.get("cr", 5), "modem.cr", 5),
        "preamble": _int(v.get("preamble", 8), "modem.preamble", 1),
    }
    try:
        radio.time_on_air_us(10, out)
        radio.snr_floor_db(out["sf"])
    except ValueError as exc:
        raise ScenarioError("modem: %s" % exc) from None
    return out


def _board(v: Any, default: dict, where: str) -> dict:
    if isinstance(v, str):
        if v not in radio.BOARDS:
            raise ScenarioError("%s: unknown board %r (known: %s)" % (where, v, ", ".join(sorted(radio.BOARDS))))
        return dict(radio.BOARDS[v])
    v = _obj(v, where)
    base = dict(radio.BOARDS[v["preset"]]) if isinstance(v.get("preset"), str) and v["preset"] in radio.BOARDS else dict(default)
    _unknown(v, {"preset", "name", "tx_dbm", "gain_dbi", "noise_figure_db"}, where)
    for k in ("tx_dbm", "gain_dbi", "noise_figure_db"):
        if k in v:
            base[k] = _num(v[k], "%s.%s" % (where, k))
    base["name"] = str(v.get("name", base.get("name", "custom")))
    return base


def _waypoints(v: Any, where: str) -> list[tuple[float, float, float]]:
    v = _list(v, where)
    if not v:
        raise ScenarioError("%s: needs at least one [t, x, y] waypoint" % where)
    out = []
    last = -1.0
    for i, w in enumerate(v):
        w = _list(w, "%s[%d]" % (where, i))
        if len(w) != 3:
            raise ScenarioError("%s[%d] must be [t_s, x_m, y_m]" % (where, i))
        t = _num(w[0], "%s[%d].t" % (where, i), 0.0)
        if t < last:
            raise ScenarioError("%s: waypoint times must not decrease" % where)
        last = t
        out.append((t, _num(w[1], where), _num(w[2], where)))
    return out


# ---------------------------------------------------------------- normalisation


def normalize(raw: Any) -> dict:
    raw = _obj(raw, "scenario")
    _unknown(
        raw,
        {"name", "description", "duration_s", "seed", "modem", "region", "radio", "board", "nodes", "generate",
         "links", "traffic", "failures", "confirm"},
        "scenario",
    )
    sc: dict[str, Any] = {
        "name": str(raw.get("name", "scenario")),
        "description": str(raw.get("description", "")),
        "duration_s": _num(raw.get("duration_s", 3600), "duration_s", 1.0),
        "seed": _int(raw.get("seed", 1), "seed", 0),
    }
    sc["modem"] = _modem(raw.get("modem", "LONG_FAST"))
    region = raw.get("region", "EU_868")
    if not isinstance(region, str) or region not in radio.REGIONS:
        raise ScenarioError("region: unknown %r (known: %s)" % (region, ", ".join(sorted(radio.REGIONS))))
    sc["region"] = dict(radio.REGIONS[region])

    r = dict(DEFAULT_RADIO)
    rv = _obj(raw.get("radio", {}), "radio")
    _unknown(rv, set(DEFAULT_RADIO), "radio")
    for k, v in rv.items():
        if k == "ref_loss_db":
            r[k] = None if v is None else _num(v, "radio.ref_loss_db")
        elif k == "lbt_jitter_ms":
            r[k] = _pair(v, "radio.lbt_jitter_ms")
        elif k in ("ref_distance_m", "courier_step_s"):
            r[k] = _num(v, "radio." + k, 1e-3)
        else:
            r[k] = _num(v, "radio." + k, 0.0)
    sc["radio"] = r
    sc["confirm"] = _confirm(raw["confirm"], "confirm") if "confirm" in raw else dict(DEFAULT_CONFIRM)

    default_board = _board(raw.get("board", "heltec_v3"), radio.BOARDS["heltec_v3"], "board")
    nodes = _nodes(raw, default_board, sc)
    sc["nodes"] = nodes
    index = {n["name"]: i for i, n in enumerate(nodes)}
    sc["index"] = index

    def ref(v: Any, where: str) -> int:
        if not isinstance(v, str) or v not in index:
            raise ScenarioError("%s: unknown node %r" % (where, v))
        return index[v]

    sc["links"] = None
    if "links" in raw:
        links = []
        for i, ln in enumerate(_list(raw["links"], "links")):
            where = "links[%d]" % i
            ln = _obj(ln, where)
            _unknown(ln, {"a", "b", "loss", "rssi", "snr"}, where)
            a, b = ref(ln.get("a"), where + ".a"), ref(ln.get("b"), where + ".b")
            if a == b:
                raise ScenarioError("%s: a link needs two different nodes" % where)
            links.append({
                "a": a, "b": b,
                "loss": _num(ln.get("loss", 0.0), where + ".loss", 0.0, 1.0),
                "rssi": _num(ln["rssi"], where + ".rssi") if "rssi" in ln else None,
                "snr": _num(ln["snr"], where + ".snr") if "snr" in ln else None,
            })
        sc["links"] = links
        for n in nodes:
            if n["courier"] is not None:
                raise ScenarioError("node %s: couriers need positions, not an explicit link table" % n["name"])
    else:
        for n in nodes:
            if n["pos"] is None:
                raise ScenarioError("node %s: needs \"pos\" [x_m, y_m] (or a courier path, or a scenario \"links\" table)" % n["name"])

    rng = random.Random("%d:traffic" % sc["seed"])
    sc["traffic"] = _traffic(raw.get("traffic", []), ref, sc, rng, len(nodes))
    sc["failures"] = _failures(raw.get("failures", []), ref, sc, random.Random("%d:failures" % sc["seed"]), len(nodes))
    sc["_normalized"] = True
    return sc


def _nodes(raw: dict, default_board: dict, sc: dict) -> list[dict]:
    nodes: list[dict] = []
    seen: set[str] = set()
    for i, n in enumerate(_list(raw.get("nodes", []), "nodes")):
        where = "nodes[%d]" % i
        n = _obj(n, where)
        _unknown(n, {"name", "pos", "courier", "board", "config", "confirm"}, where)
        name = n.get("name", "n%d" % i)
        if not isinstance(name, str) or not name:
            raise ScenarioError("%s.name must be a non-empty string" % where)
        if name in seen:
            raise ScenarioError("%s: duplicate node name %r" % (where, name))
        seen.add(name)
        where = "node %s" % name
        pos = None
        if "pos" in n:
            p = _list(n["pos"], where + ".pos")
            if len(p) != 2:
                raise ScenarioError("%s.pos must be [x_m, y_m]" % where)
            pos = (_num(p[0], where + ".pos"), _num(p[1], where + ".pos"))
        courier = None
        if "courier" in n:
            c = n["courier"]
            if isinstance(c, dict):
                _unknown(c, {"waypoints"}, where + ".courier")
                c = c.get("waypoints")
            courier = _waypoints(c, where + ".courier")
            pos = (courier[0][1], courier[0][2])
        nodes.append({
            "name": name,
            "pos": pos,
            "courier": courier,
            "board": _board(n["board"], default_board, where + ".board") if "board" in n else dict(default_board),
            "config": dict(_obj(n.get("config", {}), where + ".config")),
            "confirm": _confirm(n["confirm"], where + ".confirm") if "confirm" in n else None,
        })
    if "generate" in raw:
        g = _obj(raw["generate"], "generate")
        _unknown(g, {"count", "width_m", "height_m", "prefix", "layout_seed", "board"}, "generate")
        count = _int(g.get("count"), "generate.count", 1)
        w = _num(g.get("width_m", 5000), "generate.width_m", 1.0)
        h = _num(g.get("height_m", w), "generate.height_m", 1.0)
        prefix = str(g.get("prefix", "g"))
        board = _board(g["board"], default_board, "generate.board") if "board" in g else default_board
        lrng = random.Random("%s:layout" % g.get("layout_seed", sc["seed"]))
        for k in range(count):
            name = "%s%03d" % (prefix, k)
            if name in seen:
                raise ScenarioError("generate: node name %r already used" % name)
            seen.add(name)
            nodes.append({
                "name": name, "pos": (round(lrng.uniform(0, w), 1), round(lrng.uniform(0, h), 1)), "courier": None,
                "board": dict(board), "config": {}, "confirm": None,
            })
    if len(nodes) < 1:
        raise ScenarioError("scenario has no nodes")
    return nodes


def _time(v: Any, where: str, sc: dict) -> float:
    t = _num(v, where, 0.0)
    if t > sc["duration_s"]:
        raise ScenarioError("%s = %g is after the end of the run (duration_s = %g)" % (where, t, sc["duration_s"]))
    return t


def _pick_nodes(v: Any, ref: Any, where: str) -> list[int]:
    if isinstance(v, str):
        return [ref(v, where)]
    return [ref(x, where) for x in _list(v, where)]


def _traffic(items: Any, ref: Any, sc: dict, rng: random.Random, n_nodes: int) -> list[dict]:
    out: list[dict] = []
    for i, it in enumerate(_list(items, "traffic")):
        where = "traffic[%d]" % i
        it = _obj(it, where)
        kind = it.get("type", "bulletin")
        if kind == "bulletin":
            _unknown(it, {"type", "t", "node", "text", "decision"}, where)
            b = {"type": "bulletin", "t": _time(it.get("t"), where + ".t", sc), "node": ref(it.get("node"), where + ".node"),
                 "text": str(it.get("text", "bulletin %d" % i))}
            if "decision" in it:
                if not isinstance(it["decision"], bool):
                    raise ScenarioError("%s.decision must be true or false, got %r" % (where, it["decision"]))
                if it["decision"]:
                    b["decision"] = True
            out.append(b)
        elif kind == "drill":
            _unknown(it, {"type", "t", "node", "text", "confirm"}, where)
            out.append({"type": "drill", "t": _time(it.get("t"), where + ".t", sc), "node": ref(it.get("node"), where + ".node"),
                        "text": str(it.get("text", "drill %d" % i)),
                        "confirm": _confirm(it["confirm"], where + ".confirm") if "confirm" in it else dict(sc["confirm"])})
        elif kind == "bulletins":
            _unknown(it, {"type", "count", "start_s", "interval_s", "node", "text"}, where)
            count = _int(it.get("count"), where + ".count", 1)
            start = _time(it.get("start_s", 0), where + ".start_s", sc)
            step = _num(it.get("interval_s", 60), where + ".interval_s", 0.0)
            src = it.get("node", "random")
            pool = list(range(n_nodes)) if src == "random" else _pick_nodes(src, ref, where + ".node")
            for k in range(count):
                t = start + k * step
                if t > sc["duration_s"]:
                    raise ScenarioError("%s: bulletin %d at t=%g is after the end of the run" % (where, k, t))
                node = pool[k % len(pool)] if src != "random" else rng.choice(pool)
                out.append({"type": "bulletin", "t": t, "node": node,
                            "text": "%s #%d" % (it.get("text", "bulletin"), k)})
        else:
            raise ScenarioError("%s.type must be \"bulletin\", \"drill\" or \"bulletins\", got %r" % (where, kind))
    out.sort(key=lambda e: e["t"])  # stable: equal times keep file order
    return out


def _failures(items: Any, ref: Any, sc: dict, rng: random.Random, n_nodes: int) -> list[dict]:
    out: list[dict] = []
    for i, it in enumerate(_list(items, "failures")):
        where = "failures[%d]" % i
        it = _obj(it, where)
        kind = it.get("type", "off")
        t = _time(it.get("t"), where + ".t", sc)
        until = None
        if it.get("until") is not None:
            until = _time(it["until"], where + ".until", sc)
            if until < t:
                raise ScenarioError("%s: until < t" % where)
        if kind == "off":
            _unknown(it, {"type", "t", "until", "nodes", "fraction", "exclude"}, where)
            if "nodes" in it:
                nodes = _pick_nodes(it["nodes"], ref, where + ".nodes")
            elif "fraction" in it:
                frac = _num(it["fraction"], where + ".fraction", 0.0, 1.0)
                excl = set(_pick_nodes(it.get("exclude", []), ref, where + ".exclude"))
                pool = [k for k in range(n_nodes) if k not in excl]
                nodes = sorted(rng.sample(pool, int(round(frac * len(pool)))))
            else:
                raise ScenarioError("%s: an \"off\" failure needs \"nodes\" or \"fraction\"" % where)
            out.append({"type": "off", "t": t, "until": until, "nodes": nodes})
        elif kind == "partition":
            _unknown(it, {"type", "t", "until", "groups"}, where)
            groups = [_pick_nodes(g, ref, where + ".groups") for g in _list(it.get("groups"), where + ".groups")]
            if len(groups) < 2:
                raise ScenarioError("%s: a partition needs at least two groups" % where)
            seen: set[int] = set()
            for g in groups:
                if seen & set(g):
                    raise ScenarioError("%s: a node is in two groups" % where)
                seen |= set(g)
            out.append({"type": "partition", "t": t, "until": until, "groups": groups})
        else:
            raise ScenarioError("%s.type must be \"off\" or \"partition\", got %r" % (where, kind))
    return out


def courier_position(waypoints: list[tuple[float, float, float]], t_s: float) -> tuple[float, float]:
    """Linear interpolation between [t, x, y] waypoints; clamped before the first / after the last."""
    if t_s <= waypoints[0][0]:
        return (waypoints[0][1], waypoints[0][2])
    for k in range(1, len(waypoints)):
        t1, x1, y1 = waypoints[k]
        if t_s <= t1:
            t0, x0, y0 = waypoints[k - 1]
            if t1 <= t0:
                return (x1, y1)
            f = (t_s - t0) / (t1 - t0)
            return (x0 + f * (x1 - x0), y0 + f * (y1 - y0))
    return (waypoints[-1][1], waypoints[-1][2])
