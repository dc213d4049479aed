"""Simulated flux towers: realistic 10/20 Hz turbulence streamed as `ec_raw` journal records.

Each averaging period of each tower is synthesised at once, deterministically from (seed, tower,
period), so a restart re-sends exactly the same samples:

- independent Gaussian series with a turbulence spectrum, flat below ~0.05 Hz and falling as
  f^(-5/3) in the inertial range (amplitudes shaped in the Fourier domain);
- w from the first series; u, T, CO2 and H2O correlated with it (cov(u, w) < 0 gives u* ~ 0.3 m/s,
  cov(w, T) > 0 an afternoon sensible heat flux of ~50-100 W m-2, CO2 uptake of ~-10 umol m-2 s-1,
  evaporation), the mean wind turned into the sonic's axes by a tower-specific direction and a
  small tilt;
- CO2 and H2O (mixing ratios, ppm and ppt) arrive `lag_s` after w, like a closed-path system, so
  the kernel's lag search has a known answer.

The connector sends each tower's samples of the last `batch_s` seconds as one record, in real
time; it starts at the beginning of the current averaging period (the first period is complete).
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial

import numpy as np
import numpy.typing as npt

from carbonstream.config import Config
from carbonstream.metrics import JOURNAL_APPENDED, SAMPLES_INGESTED
from connectors.ec.settings import EcSimulatorSettings, simulated_sites
from connectors.storage_wait import until_stored
from storage.journal import JournalEntry
from storage.journal_backend import JournalBackend
from storage.records import EC_RAW, encode_ec_raw

log = logging.getLogger(__name__)

SOURCE = "ec-simulator"
NS = 1_000_000_000


def turbulence(
    rng: np.random.Generator, n: int, fs: float, count: int, f0: float = 0.05
) -> npt.NDArray[np.float64]:
    """`count` independent unit-variance series of n samples with a -5/3 inertial range."""
    f = np.fft.rfftfreq(n, 1.0 / fs)
    amp = (1.0 + f / f0) ** (-5.0 / 6.0)  # power ~ f^(-5/3)
    amp[0] = 0.0
    spec = (rng.standard_normal((count, f.size)) + 1j * rng.standard_normal((count, f.size))) * amp
    x = np.fft.irfft(spec, n=n, axis=1)
    x -= x.mean(axis=1, keepdims=True)
    x /= x.std(axis=1, keepdims=True)
    return x


def tower_period(
    sim: EcSimulatorSettings, tower: int, period_index: int, n: int
) -> dict[str, npt.NDArray[np.float32]]:
    """The samples of one averaging period of one tower, kernel columns and units."""
    fs = sim.sampling_hz
    lag = round(sim.lag_s * fs)
    rng = np.random.default_rng([sim.seed, tower, period_index])
    a, b, c, d, e, g = turbulence(rng, n + lag, fs, 6)
    sw, su, sv, st, sc, sq = 0.35, 0.8, 0.7, 0.3, 2.0, 0.3
    day = 0.5 + 0.5 * np.sin(2 * np.pi * (period_index % 48) / 48.0)
    w = sw * a
    u = 3.0 + su * (-0.35 * a + np.sqrt(1 - 0.35**2) * c)
    v = sv * d
    t = 293.15 + 5 * day + st * (0.45 * a + np.sqrt(1 - 0.45**2) * b)
    co2 = 400.0 + sc * (-0.5 * a + np.sqrt(0.75) * e)
    h2o = 12.0 + sq * (0.5 * a + np.sqrt(0.75) * g)
    # The gases arrive `lag` samples after the wind and temperature they were sampled with.
    w, u, v, t = w[lag:], u[lag:], v[lag:], t[lag:]
    co2, h2o = co2[:n], h2o[:n]
    # Mean wind from a tower-specific direction, into the sonic's axes, with a small tilt.
    heading = np.deg2rad(40.0 + 70.0 * tower)
    us = u * np.cos(heading) - v * np.sin(heading)
    vs = u * np.sin(heading) + v * np.cos(heading)
    ws = w + 0.02 * us
    return {
        "u": us.astype(np.float32),
        "v": vs.astype(np.float32),
        "w": ws.astype(np.float32),
        "ts": t.astype(np.float32),
        "co2": co2.astype(np.float32),
        "h2o": h2o.astype(np.float32),
        "pressure_pa": np.full(n, 100_000.0, dtype=np.float32),
    }


class TowerFleet:
    """Samples of every simulated tower between two instants (periods cached while streamed)."""

    def __init__(self, sim: EcSimulatorSettings) -> None:
        self.sim = sim
        self.ids = [s.id for s in simulated_sites(sim)]
        self.period_ns = round(sim.averaging_min * 60 * NS)
        self.n = round(sim.averaging_min * 60 * sim.sampling_hz)
        self.step_ns = round(NS / sim.sampling_hz)
        self._cache: dict[tuple[int, int], dict[str, npt.NDArray[np.float32]]] = {}

    def period(self, tower: int, index: int) -> dict[str, npt.NDArray[np.float32]]:
        key = (tower, index)
        if key not in self._cache:
            for old in [k for k in self._cache if k[0] == tower and k[1] < index - 1]:
                del self._cache[old]
            self._cache[key] = tower_period(self.sim, tower, index, self.n)
        return self._cache[key]

    def samples(
        self, tower: int, t0_ns: int, t1_ns: int
    ) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.float32]]]:
        """Samples starting in [t0, t1) (both on the sample grid)."""
        k0, k1 = -(-t0_ns // self.step_ns), -(-t1_ns // self.step_ns)
        ks = np.arange(k0, k1, dtype=np.int64)
        ts = ks * self.step_ns
        pidx = ts // self.period_ns
        cols: dict[str, list[npt.NDArray[np.float32]]] = {}
        for p in np.unique(pidx):
            sel = pidx == p
            pos = ((ts[sel] - int(p) * self.period_ns) // self.step_ns).astype(np.int64)
            data = self.period(tower, int(p))
            for k, v in data.items():
                cols.setdefault(k, []).append(v[np.clip(pos, 0, self.n - 1)])
        return ts, {k: np.concatenate(v) for k, v in cols.items()}


async def run_ec_simulator(config: Config, journal: JournalBackend) -> None:
    sim = config.ec.simulator
    fleet = TowerFleet(sim)
    if not fleet.ids:
        return
    log.info(
        "ec simulator: %d tower(s) at %g Hz, %g-min periods, lag %.2f s",
        len(fleet.ids),
        sim.sampling_hz,
        sim.averaging_min,
        sim.lag_s,
    )
    batch_ns = round(sim.batch_s * NS)
    now = time.time_ns()
    t = now // fleet.period_ns * fleet.period_ns  # the current period, from its start
    while True:
        end = min(time.time_ns() // batch_ns * batch_ns, t + 60 * NS)
        if end <= t:
            await asyncio.sleep((t + batch_ns - time.time_ns()) / NS)
            continue
        entries = []
        for i, site in enumerate(fleet.ids):
            ts, cols = fleet.samples(i, t, end)
            entries.append(JournalEntry(site, EC_RAW, encode_ec_raw(ts, cols)))
            SAMPLES_INGESTED.labels(SOURCE).inc(int(ts.size))
        await until_stored(SOURCE, partial(journal.append_routed, entries))
        JOURNAL_APPENDED.labels(SOURCE).inc(len(entries))
        t = end
