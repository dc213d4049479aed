//! Command (`CN`) and system (`ST`) codes of HJ 212-2017 that the server acts on.
//!
//! Codes are kept as numbers in [`super::Packet`] so that codes not listed here still parse.

/// `CN` command codes.
pub mod cn {
    pub const REALTIME_DATA: u16 = 2011;
    pub const STOP_REALTIME_DATA: u16 = 2012;
    pub const EQUIPMENT_STATUS: u16 = 2021;
    pub const STOP_EQUIPMENT_STATUS: u16 = 2022;
    pub const DAILY_DATA: u16 = 2031;
    pub const RUN_TIME: u16 = 2041;
    pub const MINUTE_DATA: u16 = 2051;
    pub const HOURLY_DATA: u16 = 2061;
    pub const LOGGER_RESTART: u16 = 2081;
    /// Request answer (`QnRtn`).
    pub const REQUEST_ANSWER: u16 = 9011;
    /// Execution result (`ExeRtn`).
    pub const EXECUTION_RESULT: u16 = 9012;
    /// Notification answer.
    pub const NOTIFICATION_ANSWER: u16 = 9013;
    /// Data answer: acknowledges a data packet.
    pub const DATA_ANSWER: u16 = 9014;
}

/// `ST` system codes.
pub mod st {
    pub const SURFACE_WATER_QUALITY: u16 = 21;
    pub const AIR_QUALITY: u16 = 22;
    pub const AIR_POLLUTION_SOURCE: u16 = 31;
    pub const SURFACE_WATER_POLLUTION_SOURCE: u16 = 32;
    pub const FLUE_GAS_PROCESS: u16 = 51;
    /// System interaction: the `ST` of answers.
    pub const SYSTEM_INTERACTION: u16 = 91;
}

/// What a `CN` means, for logs. `None` for codes this table does not know.
pub fn command_name(code: u16) -> Option<&'static str> {
    Some(match code {
        1000 => "set timeout and retries",
        1011 => "get logger time",
        1012 => "set logger time",
        1013 => "logger time calibration request",
        1061 => "get real-time data interval",
        1062 => "set real-time data interval",
        1063 => "get minute data interval",
        1064 => "set minute data interval",
        1072 => "set access password",
        2011 => "real-time data",
        2012 => "stop real-time data",
        2021 => "equipment status",
        2022 => "stop equipment status",
        2031 => "daily data",
        2041 => "equipment run time",
        2051 => "minute data",
        2061 => "hourly data",
        2081 => "logger restart",
        3011..=3021 => "control command",
        9011 => "request answer",
        9012 => "execution result",
        9013 => "notification answer",
        9014 => "data answer",
        _ => return None,
    })
}
