//! Emission rates: HJ 212-2017 Appendix D \[33\] and CO2 from a volume fraction.

/// Density of CO2 at standard conditions used for volume-% analysers, kg/m3 (44.01/22.414).
/// 1 % CO2 is 19,635 mg/m3.
pub const CO2_DENSITY_KG_M3: f64 = 44.01 / 22.414;

/// \[33\] Mass rate, kg/h: `G_h = C [mg/m3] * Q_snh [m3/h] * 1e-6` (both at standard dry
/// conditions).
pub fn mass_rate_kg_h(c_mg_m3: f64, q_snh_m3_h: f64) -> f64 {
    c_mg_m3 * q_snh_m3_h * 1e-6
}

/// CO2 mass rate from a volume-% analyser, kg/h: `E = CO2%/100 * Q_snd * rho_CO2`
/// (dry CO2 with dry standard flow).
pub fn co2_rate_from_percent_kg_h(co2_pct: f64, q_snd_m3_h: f64) -> f64 {
    co2_pct / 100.0 * q_snd_m3_h * CO2_DENSITY_KG_M3
}

/// The unit a site's analyser reports a concentration in. Configurable per site and code: real
/// loggers send CO2 (a05001) as % or as mg/m3.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConcentrationUnit {
    MgPerM3,
    /// Volume %; `density_kg_m3` of the gas at standard conditions ([`CO2_DENSITY_KG_M3`]).
    VolumePercent {
        density_kg_m3: f64,
    },
    /// umol/mol, converted with \[20\] and this molar mass (g/mol).
    Ppm {
        molar_mass_g_mol: f64,
    },
}

impl ConcentrationUnit {
    /// CO2 sent as volume %.
    pub const CO2_PERCENT: Self = Self::VolumePercent {
        density_kg_m3: CO2_DENSITY_KG_M3,
    };

    /// The value in mg/m3 at standard conditions.
    pub fn to_mg_m3(&self, value: f64) -> f64 {
        match *self {
            Self::MgPerM3 => value,
            // % -> fraction (1/100), kg/m3 -> mg/m3 (1e6).
            Self::VolumePercent { density_kg_m3 } => value * density_kg_m3 * 1e4,
            Self::Ppm { molar_mass_g_mol } => {
                super::conditions::ppm_to_mg_m3(value, molar_mass_g_mol)
            }
        }
    }

    /// Factor `k` with `mass rate [kg/h] = k * value * flow [m3/h]` (see
    /// `cems::ChannelConfig::mass_factor`).
    pub fn kg_per_h_factor(&self) -> f64 {
        self.to_mg_m3(1.0) * 1e-6
    }
}
