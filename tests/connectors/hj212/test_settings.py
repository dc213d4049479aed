"""CEMS site settings: refusals name the key and the reason; every accepted site builds a Rust
pipeline spec (flow bases, units, fuels); simulated stacks are served like declared sites."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from carbonstream.config import ConfigError, load_config
from carbonstream.core import cems
from connectors.hj212.sites import effective_sites, site_rows
from stream.cems import stack_spec

SITE = '[[cems.sites]]\nid = "s1"\nmn = "MN1"\npassword = "p"\n'


def problems(write_config: Callable[[str], Path], text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(write_config(text), environ={})
    return err.value.problems


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (SITE, "site id 's1' is declared twice"),
        ('flow_basis = "velocity"\n', "needs an auxiliary velocity channel a01011"),
        (
            'flow_basis = "actual"\n[[cems.sites.channels]]\ncode = "a05001"\n',
            "needs an auxiliary temperature channel a01012",
        ),
        ('policy = "epa"\n', "cems.sites[0].policy: Input should be 'hj75' or 'part75'"),
        ('utc_offset = "8"\n', "cems.sites[0].utc_offset: String should match pattern"),
        (
            '[[cems.sites.channels]]\ncode = "a21026"\nunit = "ppm"\n',
            "a21026: a 'ppm' channel needs molar_mass_g_mol",
        ),
        (
            '[[cems.sites.channels]]\ncode = "a21026"\nunit = "g/m3"\n',
            "unit 'g/m3' of a mass channel must be",
        ),
        ('[[cems.sites.fuel_meters]]\ncode = "f1"\nfuel = "custom"\n', "'custom' fuel needs"),
        (
            '[[cems.sites.channels]]\ncode = "a21026"\n[[cems.sites.fuel_meters]]\ncode = "f1"\n',
            "fuel_meters are compared with CO2: add a mass channel a05001",
        ),
    ],
)
def test_bad_sites_are_refused_with_the_reason(
    write_config: Callable[[str], Path], extra: str, expected: str
) -> None:
    found = problems(write_config, SITE + extra)
    assert any(expected in p for p in found), found


def test_every_flow_basis_and_unit_builds_a_pipeline(write_config: Callable[[str], Path]) -> None:
    text = (
        SITE
        + 'flow_basis = "velocity"\nduct_area_m2 = 12.5\nvelocity_coefficient = 1.02\n'
        + 'policy = "part75"\nrules = { lookback_hours = 360 }\n'
        + "".join(
            f'[[cems.sites.channels]]\ncode = "{c}"\n{u}'
            for c, u in [
                ("a05001", 'unit = "%"\n'),
                ("a21026", 'unit = "ppm"\nmolar_mass_g_mol = 64.06\nmax_step = 50.0\n'),
                ("a01011", ""),
                ("a01012", ""),
                ("a01013", ""),
                ("a01014", ""),
            ]
        )
        + '[[cems.sites.fuel_meters]]\ncode = "c1"\nfuel = "raw_coal"\n'
        + '[[cems.sites]]\nid = "s2"\nmn = "MN2"\npassword = "q"\nflow_unit = "m3/h"\n'
        + 'flow_basis = "actual"\n'
    )
    config = load_config(write_config(text), environ={})
    s1, s2 = config.cems.sites
    assert s1.condition_index("velocity") == 2 and s1.condition_index("temperature") == 3
    assert s2.condition_index("moisture") == 7  # the default channel set
    for site in (s1, s2):
        spec = stack_spec(site)
        assert spec.channels == len(site.channels)
        cems.StackPipeline(spec)
    assert s1.fuel_meters[0].factors() == (20.908, 26.37, 0.94)
    rows = site_rows(s1)
    assert rows["s1/a21026"]["mass_unit"] == "kg" and rows["s1/a01012"]["role"] == "auxiliary"
    assert rows["s1/a00000"]["unit"] == "m3/h"


def test_simulated_stacks_are_sites_unless_declared(write_config: Callable[[str], Path]) -> None:
    text = SITE + "[connectors.cems_simulator]\ncount = 2\n"
    config = load_config(write_config(text), environ={})
    assert [s.id for s in effective_sites(config)] == ["s1", "sim-stack-000", "sim-stack-001"]
    off = load_config(
        write_config(text), environ={"CARBONSTREAM_CONNECTORS__CEMS_SIMULATOR__ENABLED": "false"}
    )
    assert [s.id for s in effective_sites(off)] == ["s1"]
