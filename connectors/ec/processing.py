"""Offline processing of raw files: read, buffer by period, one kernel call per period.

The same `PeriodBuffer` and kernel as the dataflow (stream/ec.py), so a file processed here and
the same samples streamed give the same fluxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from carbonstream.core import InputError
from carbonstream.core import ec as ec_core
from connectors.ec import fluxnet
from connectors.ec.readers import EcReadError, RawTable, ReadErrors, read_raw_file
from connectors.ec.settings import (
    EcSettingsError,
    EcSiteSettings,
    icos_filename_time,
    read_metadata,
    site_columns,
)
from stream.ec_periods import PeriodBuffer


class ProcessError(ValueError):
    """Settings that cannot be used (nothing was processed)."""


@dataclass
class PeriodRow:
    start_ns: int
    end_ns: int
    values: dict[str, float]
    flags: list[str]


@dataclass
class ProcessResult:
    site: EcSiteSettings
    periods: list[PeriodRow] = field(default_factory=list)
    errors: ReadErrors = field(default_factory=ReadErrors)
    refused_files: list[str] = field(default_factory=list)
    late_samples: int = 0

    def fluxnet_csv(self) -> str:
        return fluxnet.write_csv((p.start_ns, p.end_ns, p.values) for p in self.periods)

    def report(self) -> list[str]:
        out = [
            f"{self.site.id}: {len(self.periods)} period(s) of {self.site.averaging_min:g} min, "
            f"{sum(1 for p in self.periods if p.flags)} with flags"
        ]
        for p in self.periods:
            if p.flags:
                out.append(f"  {fluxnet.stamp(p.start_ns)}: {', '.join(p.flags)}")
        for reason, n in sorted(self.errors.counts.items()):
            out.append(f"  refused {reason}: {n}")
        out.extend(f"    {e}" for e in self.errors.examples)
        if self.late_samples:
            out.append(f"  late samples (period already closed): {self.late_samples}")
        out.extend(f"  file refused: {f}" for f in self.refused_files)
        return out


def load_site(
    metadata: Path,
    files: list[Path],
    period_min: float | None = None,
    planar_fit: Path | None = None,
    spectral_assessment: Path | None = None,
    random_uncertainty: bool = False,
) -> EcSiteSettings:
    at = next((t for f in files if (t := icos_filename_time(f.name)) is not None), None)
    try:
        site = read_metadata(metadata, at)
        methods: dict[str, object] = {}
        if planar_fit is not None:
            methods.update(rotation="planar_fit", planar_fit_file=planar_fit)
        if spectral_assessment is not None:
            methods.update(spectral="ibrom2007", spectral_assessment_file=spectral_assessment)
        if random_uncertainty:
            methods["random_uncertainty"] = True
        update: dict[str, object] = {}
        if methods:
            update["methods"] = site.methods.model_copy(update=methods)
        if period_min is not None:
            update["averaging_min"] = period_min
        if update:
            site = EcSiteSettings.model_validate({**site.model_dump(), **update})
    except (EcSettingsError, ValueError) as exc:
        raise ProcessError(str(exc)) from None
    return site


def make_processor(site: EcSiteSettings) -> ec_core.EcProcessor:
    try:
        return ec_core.EcProcessor(site.kernel_config())
    except (InputError, EcSettingsError) as exc:
        raise ProcessError(f"site {site.id}: {exc}") from None


def process_tables(
    site: EcSiteSettings, tables: list[RawTable], processor: ec_core.EcProcessor
) -> ProcessResult:
    result = ProcessResult(site)
    buffer = PeriodBuffer(site_columns(site), site.sampling_hz, site.period_s)

    def on_close(start_ns: int, cols: dict[str, npt.NDArray[np.float32]], received: int) -> None:
        values, flags = processor.process(cols)
        result.periods.append(PeriodRow(start_ns, start_ns + buffer.period_ns, values, flags))

    tables = sorted(tables, key=lambda t: int(t.ts_ns[0]) if len(t) else 0)
    for t in tables:
        result.errors.merge(t.errors)
        stats = buffer.add(t.ts_ns, t.columns, on_close)
        result.late_samples += stats.late
        if stats.outside:
            result.errors.add("off_grid_timestamp", t.source, stats.outside)
    buffer.close(on_close)
    return result


def process_files(
    files: list[Path],
    metadata: Path,
    period_min: float | None = None,
    planar_fit: Path | None = None,
    spectral_assessment: Path | None = None,
    random_uncertainty: bool = False,
) -> ProcessResult:
    site = load_site(
        metadata, files, period_min, planar_fit, spectral_assessment, random_uncertainty
    )
    processor = make_processor(site)
    tables, refused = [], []
    for f in files:
        try:
            tables.append(read_raw_file(f, site))
        except EcReadError as exc:
            refused.append(str(exc))
    result = process_tables(site, tables, processor)
    result.refused_files = refused
    return result


def utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)
