"""Radio model of the simulator: link budget, SF floors, regions, board presets, airtime.

Everything here is a pure function of its arguments (no global state), so the engine can
precompute a link-budget matrix once and the tests can check each rule on its own.

Sources (facts and numbers only):
- LoRa demodulator SNR limit per spreading factor: Semtech SX1276/77/78/79 datasheet, rev. 7,
  section 4.1.1.2, Table 13 "Range of Spreading Factors": SF6 -5 dB, SF7 -7.5 dB, SF8 -10 dB,
  SF9 -12.5 dB, SF10 -15 dB, SF11 -17.5 dB, SF12 -20 dB.
- Thermal noise floor: -174 dBm/Hz at 290 K, so N = -174 + 10*log10(BW) + NF (NF = receiver
  noise figure, 6 dB by default, the figure Semtech's sensitivity examples use).  The sensitivity
  is then N + SNR_limit(SF) (e.g. SF11 / 250 kHz: -174 + 54.0 + 6 - 17.5 = -131.5 dBm).
- Free-space reference loss at d0 (Friis): 20*log10(4*pi*d0*f/c).
- Log-distance path loss: PL(d) = PL(d0) + 10*n*log10(d/d0) + X, X ~ N(0, sigma) drawn once per
  unordered node pair (symmetric), see ``Shadowing``.
- Time on air: ``plexwire.airtime.time_on_air_us`` (SX1276 datasheet 4.1.1.7).
- EU 868 MHz sub-band g3 (869.4-869.65 MHz): 10 % duty cycle, 500 mW ERP (ETSI EN 300 220,
  ERC Rec. 70-03 annex 1).  US 902-928 MHz: no duty-cycle limit (FCC part 15.247).
"""

from __future__ import annotations

import math
import random
from typing import Callable

from plexwire import airtime as _airtime

SPEED_OF_LIGHT = 299_792_458.0

# SX1276 datasheet Table 13: LoRa demodulator SNR limit (dB) per spreading factor.
SNR_FLOOR_DB = {6: -5.0, 7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0}

DEFAULT_NOISE_FIGURE_DB = 6.0
DEFAULT_CAPTURE_DB = 6.0

# Regions: centre frequency of the default channel, duty-cycle budget (fraction of any hour),
# max conducted TX power the sim lets a board use.
REGIONS: dict[str, dict] = {
    "EU_868": {"name": "EU_868", "freq_hz": 869_525_000, "duty_cycle": 0.10, "tx_dbm_max": 27.0},
    "EU_433": {"name": "EU_433", "freq_hz": 433_875_000, "duty_cycle": 0.10, "tx_dbm_max": 10.0},
    "US_915": {"name": "US_915", "freq_hz": 906_875_000, "duty_cycle": 1.0, "tx_dbm_max": 30.0},
}

# Board presets: conducted TX power, antenna gain (both ends count), receiver noise figure.
# SX1262 boards reach +22 dBm, SX1276 boards +20 dBm on PA_BOOST (their datasheets).
BOARDS: dict[str, dict] = {
    "generic": {"name": "generic", "tx_dbm": 20.0, "gain_dbi": 2.0, "noise_figure_db": 6.0},
    "heltec_v3": {"name": "heltec_v3", "tx_dbm": 22.0, "gain_dbi": 2.0, "noise_figure_db": 6.0},
    "tbeam": {"name": "tbeam", "tx_dbm": 22.0, "gain_dbi": 2.0, "noise_figure_db": 6.0},
    "lilygo_t3": {"name": "lilygo_t3", "tx_dbm": 20.0, "gain_dbi": 2.0, "noise_figure_db": 6.0},
    "rooftop": {"name": "rooftop", "tx_dbm": 22.0, "gain_dbi": 6.0, "noise_figure_db": 6.0},
}


def modem_presets() -> dict[str, tuple[int, int, int, int]]:
    """name -> (sf, bw_hz, cr, preamble), from plexwire.airtime.MODEM_PRESETS."""
    return dict(_airtime.MODEM_PRESETS)


def time_on_air_us(payload_len: int, modem: dict) -> int:
    """Airtime of one frame on this modem (plexwire.airtime; explicit header, CRC on, auto LDRO)."""
    return int(
        _airtime.time_on_air_us(
            payload_len, modem["sf"], modem["bw_hz"], cr=modem["cr"], preamble=modem["preamble"]
        )
    )


def symbol_time_us(modem: dict) -> float:
    return (1 << modem["sf"]) * 1e6 / modem["bw_hz"]


def preamble_time_us(modem: dict) -> float:
    """(n_preamble + 4.25) symbols: the window in which a receiver locks onto a frame."""
    return (modem["preamble"] + 4.25) * symbol_time_us(modem)


def noise_floor_dbm(bw_hz: float, noise_figure_db: float = DEFAULT_NOISE_FIGURE_DB) -> float:
    return -174.0 + 10.0 * math.log10(bw_hz) + noise_figure_db


def snr_floor_db(sf: int) -> float:
    try:
        return SNR_FLOOR_DB[sf]
    except KeyError:
        raise ValueError("no SNR floor for SF%r (SX1276 Table 13 covers SF6..SF12)" % (sf,)) from None


def sensitivity_dbm(sf: int, bw_hz: float, noise_figure_db: float = DEFAULT_NOISE_FIGURE_DB) -> float:
    """Weakest RSSI a receiver demodulates: noise floor + demodulator SNR limit."""
    return noise_floor_dbm(bw_hz, noise_figure_db) + snr_floor_db(sf)


def free_space_loss_db(distance_m: float, freq_hz: float) -> float:
    return 20.0 * math.log10(4.0 * math.pi * distance_m * freq_hz / SPEED_OF_LIGHT)


def path_loss_db(
    distance_m: float,
    freq_hz: float,
    exponent: float,
    ref_distance_m: float = 1.0,
    ref_loss_db: float | None = None,
) -> float:
    """Log-distance path loss (without shadowing); distances below d0 are clamped to d0."""
    pl0 = free_space_loss_db(ref_distance_m, freq_hz) if ref_loss_db is None else ref_loss_db
    d = max(distance_m, ref_distance_m)
    return pl0 + 10.0 * exponent * math.log10(d / ref_distance_m)


def captures(p_wanted_dbm: float, p_other_dbm: float, capture_db: float = DEFAULT_CAPTURE_DB) -> bool:
    """LoRa capture: the wanted frame survives an overlap iff it is at least capture_db stronger."""
    return p_wanted_dbm - p_other_dbm >= capture_db


def receivable(rssi_dbm: float, snr_db: float, sf: int, sensitivity: float) -> bool:
    """A frame can be demodulated iff RSSI >= sensitivity and SNR >= the SF's demodulator floor."""
    return rssi_dbm >= sensitivity and snr_db >= snr_floor_db(sf)


class Shadowing:
    """Per-link log-normal shadowing: one N(0, sigma) draw per unordered pair, symmetric.

    Draws come from a dedicated RNG seeded by the run seed and are made lazily but keyed by the
    pair, so the value of a pair never depends on the order in which pairs are asked for.
    """

    def __init__(self, sigma_db: float, seed: int):
        self.sigma = float(sigma_db)
        self.seed = seed
        self._cache: dict[tuple[int, int], float] = {}

    def __call__(self, a: int, b: int) -> float:
        if self.sigma <= 0.0 or a == b:
            return 0.0
        key = (a, b) if a < b else (b, a)
        v = self._cache.get(key)
        if v is None:
            rng = random.Random(self.seed * 1_000_003 + key[0] * 65_537 + key[1])
            v = rng.gauss(0.0, self.sigma)
            self._cache[key] = v
        return v


def make_link_budget(
    freq_hz: float,
    exponent: float,
    ref_distance_m: float = 1.0,
    ref_loss_db: float | None = None,
) -> Callable[[float, float, float, float, float], float]:
    """Returns rssi(distance_m, tx_dbm, gain_tx_dbi, gain_rx_dbi, shadow_db) -> received power dBm."""
    pl0 = free_space_loss_db(ref_distance_m, freq_hz) if ref_loss_db is None else float(ref_loss_db)
    ten_n = 10.0 * exponent
    log10 = math.log10

    def rssi(d: float, tx_dbm: float, g_tx: float, g_rx: float, shadow: float) -> float:
        if d < ref_distance_m:
            d = ref_distance_m
        return tx_dbm + g_tx + g_rx - (pl0 + ten_n * log10(d / ref_distance_m) + shadow)

    return rssi
