//! The Mac's serial number, its names and its power source: `ioreg`, `scutil` and `pmset`
//! (SPEC §4), for `ComputerName` and `Preflight`.

use super::{failed, MacHost, ToolOutput};
use crate::host::{HostError, NameKind, Power};
use crate::paths::mac;

impl MacHost {
    pub(super) async fn read_serial(&self) -> Result<String, HostError> {
        let args = ["-rd1", "-c", "IOPlatformExpertDevice"];
        let out = self.run_ok(mac::IOREG, &args).await?;
        parse_ioreg_serial(&out.stdout).ok_or_else(|| HostError::Unexpected {
            command: super::command_line(mac::IOREG, &args),
            output: "no IOPlatformSerialNumber in the output".to_owned(),
        })
    }

    pub(super) async fn write_name(&self, kind: NameKind, name: &str) -> Result<(), HostError> {
        let args = ["--set", kind.scutil_key(), name];
        let out: ToolOutput = self.run(mac::SCUTIL, &args, self.tool_timeout).await?;
        if out.success() {
            Ok(())
        } else {
            Err(failed(mac::SCUTIL, &args, &out))
        }
    }

    pub(super) async fn read_power(&self) -> Result<Power, HostError> {
        let out = self.run_ok(mac::PMSET, &["-g", "batt"]).await?;
        Ok(parse_pmset_batt(&out.stdout))
    }
}

/// The serial from `ioreg -rd1 -c IOPlatformExpertDevice`, whose properties are printed one a
/// line as `"IOPlatformSerialNumber" = "C02XK1JHJG5J"` inside the device's `{ ... }` block
/// (the line public scripts match, e.g. with the regex `"IOPlatformSerialNumber" = "([^"]+)"`
/// or `awk -F'"' '/IOPlatformSerialNumber/{print $4}'`).
pub(crate) fn parse_ioreg_serial(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("\"IOPlatformSerialNumber\"")?;
        let value = rest.trim_start().strip_prefix('=')?.trim();
        let value = value.strip_prefix('"')?.strip_suffix('"')?;
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// `pmset -g batt` (pmset(1)): a first line `Now drawing from 'AC Power'` or
/// `Now drawing from 'Battery Power'` (also `'UPS Power'`), then one line per battery such as
/// ` -InternalBattery-0 (id=22806627)\t78%; discharging; 5:05 remaining present: true`. A
/// desktop Mac prints only the first line.
pub(crate) fn parse_pmset_batt(stdout: &str) -> Power {
    let mut lines = stdout.lines();
    let on_battery = lines.next().is_some_and(|l| l.contains("'Battery Power'"));
    let percent = stdout.lines().skip(1).find_map(|l| {
        let (before, _) = l.split_once("%;")?;
        let digits: String = before
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        digits.parse::<u8>().ok()
    });
    Power {
        on_battery,
        percent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_from_ioreg() {
        let out = "+-o Mac14,2  <class IOPlatformExpertDevice, id 0x100000202, registered, matched, active, busy 0 (183 ms), retain 39>\n    {\n      \"IOPlatformUUID\" = \"0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9\"\n      \"IOPlatformSerialNumber\" = \"C02XK1JHJG5J\"\n      \"manufacturer\" = <\"Apple Inc.\">\n    }\n";
        assert_eq!(parse_ioreg_serial(out).as_deref(), Some("C02XK1JHJG5J"));
        assert_eq!(parse_ioreg_serial("+-o Root\n"), None);
    }

    #[test]
    fn power_from_pmset() {
        let batt = "Now drawing from 'Battery Power'\n -InternalBattery-0 (id=22806627)\t10%; discharging; 0:45 remaining present: true\n";
        assert_eq!(
            parse_pmset_batt(batt),
            Power {
                on_battery: true,
                percent: Some(10)
            }
        );
        let ac = "Now drawing from 'AC Power'\n -InternalBattery-0 (id=22806627)\t83%; charging; 1:00 remaining present: true\n";
        assert!(!parse_pmset_batt(ac).on_battery);
        let desktop = "Now drawing from 'AC Power'\n";
        assert_eq!(parse_pmset_batt(desktop).percent, None);
    }
}
