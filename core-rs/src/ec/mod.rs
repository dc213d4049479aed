//! Eddy-covariance fluxes of one averaging period, agreeing with EddyPro on its reference data.
//!
//! Building blocks, one job per module, in EddyPro's order: screening ([`filter`]), despiking
//! ([`despike`]), tilt correction ([`rotation`]), time lag ([`lag`]), detrending ([`detrend`]),
//! air properties ([`air`]), spectral factors ([`spectral`]), flux formulae ([`fluxes`]), quality
//! flags ([`qc`]), random error ([`uncertainty`]) and footprint ([`footprint`]).

pub mod air;
pub mod config;
pub mod despike;
pub mod detrend;
pub mod error;
pub mod filter;
pub mod fluxes;
pub mod footprint;
pub mod lag;
pub mod qc;
pub mod rotation;
pub mod spectral;
pub mod stats;
pub mod uncertainty;
