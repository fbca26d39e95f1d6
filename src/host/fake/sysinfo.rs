//! Fakes of `ioreg`, `scutil` and `pmset` (SPEC §4) over the world's [`Machine`].

use std::fmt::Write as _;

use super::world::{self, World, WorldError};
use super::Reply;
use crate::paths::Root;

type Outcome = Result<Reply, WorldError>;

fn with_world<T>(root: &Root, f: impl FnOnce(&mut World) -> T) -> Result<T, WorldError> {
    World::update(root, |w| {
        w.tick(world::now_ms());
        f(w)
    })
}

/// `ioreg -rd1 -c IOPlatformExpertDevice`: the device's properties one a line, as
/// `"KEY" = VALUE` inside `{ }` under a `+-o` line (the form public scripts parse for
/// `"IOPlatformSerialNumber" = "C02..."`, e.g. with `awk -F'"' '/IOPlatformSerialNumber/{print $4}'`).
pub(super) fn ioreg(root: &Root, args: &[String]) -> Outcome {
    if args != ["-rd1", "-c", "IOPlatformExpertDevice"] {
        return Ok(Reply::with_stderr(
            1,
            "fake ioreg: only -rd1 -c IOPlatformExpertDevice is faked\n",
        ));
    }
    let serial = with_world(root, |w| w.machine.serial.clone())?;
    Ok(Reply::ok(format!(
        "+-o Mac14,2  <class IOPlatformExpertDevice, id 0x100000202, registered, matched, active, busy 0 (183 ms), retain 39>\n    {{\n      \"IOPlatformUUID\" = \"0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9\"\n      \"IOPlatformSerialNumber\" = \"{serial}\"\n      \"model\" = <\"Mac14,2\">\n      \"manufacturer\" = <\"Apple Inc.\">\n    }}\n    \n"
    )))
}

/// `scutil --set ComputerName|LocalHostName|HostName NAME`. A LocalHostName that is not a DNS
/// label (letters, digits, hyphens, at most 63; no dots) is refused as Apple's
/// `scutil.tproj/prefs.c` does: `SCPreferencesSetLocalHostName() failed: Invalid argument`
/// on stderr, exit 1 (a public report of `scutil --set LocalHostName mac01.example.com.local`
/// shows exactly that line).
pub(super) fn scutil(root: &Root, args: &[String]) -> Outcome {
    let [flag, kind, name] = args else {
        return Ok(Reply::with_stderr(1, "usage: scutil --set pref [newval]\n"));
    };
    if flag != "--set" {
        return Ok(Reply::with_stderr(1, "fake scutil: only --set is faked\n"));
    }
    if kind == "LocalHostName" {
        let ok = !name.is_empty()
            && name.len() <= 63
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Ok(Reply::with_stderr(
                1,
                "SCPreferencesSetLocalHostName() failed: Invalid argument\n",
            ));
        }
    }
    let known = with_world(root, |w| {
        let m = &mut w.machine;
        let slot = match kind.as_str() {
            "ComputerName" => &mut m.computer_name,
            "LocalHostName" => &mut m.local_host_name,
            "HostName" => &mut m.host_name,
            _ => return false,
        };
        *slot = Some(name.clone());
        m.names_set.push(format!("{kind}={name}"));
        true
    })?;
    Ok(if known {
        Reply::ok("")
    } else {
        Reply::with_stderr(1, format!("scutil: unknown preference \"{kind}\"\n"))
    })
}

/// `pmset -g batt` (pmset(1)): `Now drawing from 'AC Power'` or `'Battery Power'`, then for a
/// Mac with a battery ` -InternalBattery-0 (id=…)\t<n>%; <state>; <time> remaining present: true`
/// (the form public tests of `pmset` parsers quote from real Macs).
pub(super) fn pmset(root: &Root, args: &[String]) -> Outcome {
    if args != ["-g", "batt"] {
        return Ok(Reply::with_stderr(1, "fake pmset: only -g batt is faked\n"));
    }
    let m = with_world(root, |w| {
        if w.machine
            .charger_at_ms
            .is_some_and(|at| world::now_ms() >= at)
        {
            w.machine.on_battery = false;
        }
        w.machine.clone()
    })?;
    let source = if m.on_battery {
        "Battery Power"
    } else {
        "AC Power"
    };
    let mut out = format!("Now drawing from '{source}'\n");
    if let Some(p) = m.battery_percent {
        let state = if m.on_battery {
            "discharging; 0:45 remaining"
        } else if p >= 100 {
            "charged; 0:00 remaining"
        } else {
            "charging; 1:10 remaining"
        };
        let _ = writeln!(
            out,
            " -InternalBattery-0 (id=22806627)\t{p}%; {state} present: true"
        );
    }
    Ok(Reply::ok(out))
}
