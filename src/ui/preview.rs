//! `prestage ui preview`: draws every employee screen as HTML (and PNG when a headless Chromium
//! is installed), from the same [`Strings`], branding and [`screen`] builders as the real
//! windows, so admins can review texts and branding without a Mac.
//!
//! The page imitates swiftDialog's window layout (its default 820×380 window: title on top, icon
//! column on the left, markdown message, text fields, progress bar and list, buttons bottom
//! right); it is a review aid, not a pixel copy.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::UiConfig;
use crate::policy::{PasswordPolicy, Rule};
use crate::ui::screen::{self, Screen};
use crate::ui::strings::Strings;
use crate::ui::{IdentityPrompt, ItemStatus, PasswordPrompt, Progress, StepItem};

/// Where the PNGs come from, when present.
pub const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);
const PAGE_WIDTH: u32 = 1100;
const PAGE_HEIGHT: u32 = 840;

/// A preview could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(
        "cannot write the preview to {path}: {source}; check that the --out folder is writable"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PreviewError + '_ {
    move |source| PreviewError::Io {
        path: path.to_owned(),
        source,
    }
}

/// HTML-escapes text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `**bold**` spans of escaped text.
fn inline(text: &str) -> String {
    let escaped = escape(text);
    let mut out = String::new();
    for (i, part) in escaped.split("**").enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<strong>{part}</strong>");
        } else {
            out.push_str(part);
        }
    }
    out
}

/// The small part of markdown our texts use: `## ` headings, `- ` lists, `**bold**`,
/// paragraphs split by blank lines.
pub fn markdown(text: &str) -> String {
    let mut html = String::new();
    for block in text.split("\n\n") {
        let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            continue;
        }
        let mut para: Vec<String> = Vec::new();
        let mut list: Vec<String> = Vec::new();
        let flush_para = |para: &mut Vec<String>, html: &mut String| {
            if !para.is_empty() {
                let _ = write!(html, "<p>{}</p>", para.join("<br>"));
                para.clear();
            }
        };
        let flush_list = |list: &mut Vec<String>, html: &mut String| {
            if !list.is_empty() {
                let _ = write!(html, "<ul><li>{}</li></ul>", list.join("</li><li>"));
                list.clear();
            }
        };
        for line in lines {
            if let Some(h) = line.strip_prefix("## ") {
                flush_para(&mut para, &mut html);
                flush_list(&mut list, &mut html);
                let _ = write!(html, "<h2>{}</h2>", inline(h));
            } else if let Some(item) = line.strip_prefix("- ") {
                flush_para(&mut para, &mut html);
                list.push(inline(item));
            } else {
                flush_list(&mut list, &mut html);
                para.push(inline(line));
            }
        }
        flush_para(&mut para, &mut html);
        flush_list(&mut list, &mut html);
    }
    html
}

const STYLE: &str = r#"
body { margin:0; font-family: -apple-system, "Helvetica Neue", "DejaVu Sans", Arial, sans-serif;
  background: linear-gradient(135deg,#3a6fb0,#7a4fa0 60%,#c06a7a); min-height:100vh;
  display:flex; align-items:center; justify-content:center; }
body.blur { background: linear-gradient(135deg,#8aa6c8,#a894b8 60%,#cfa3ab); }
.window { width: 820px; background:#ececec; border-radius:12px; box-shadow:0 20px 60px rgba(0,0,0,.45);
  overflow:hidden; color:#1d1d1f; }
.chrome { height:28px; display:flex; align-items:center; padding-left:12px; gap:8px; background:#e3e3e3; }
.chrome span { width:12px; height:12px; border-radius:50%; background:#ff5f57; display:inline-block; }
.chrome span:nth-child(2){background:#febc2e} .chrome span:nth-child(3){background:#28c840}
.banner { width:100%; height:130px; object-fit:cover; display:block; }
.title { text-align:center; font-size:28px; font-weight:700; padding:14px 20px 10px; }
hr { border:none; border-top:1px solid #c8c8c8; margin:0 20px; }
.body { display:flex; padding:20px 24px 8px; gap:24px; min-height:160px; }
.icon { width:150px; flex:none; display:flex; justify-content:center; align-items:flex-start; }
.icon img { width:150px; height:150px; object-fit:contain; border-radius:18px; }
.content { flex:1; font-size:15px; line-height:1.45; }
.content h2 { font-size:20px; margin:0 0 8px; }
.content p { margin:0 0 10px; } .content ul { margin:0 0 10px; padding-left:22px; }
.field { display:flex; align-items:center; gap:10px; margin:8px 0; }
.field label { width:230px; flex:none; text-align:right; font-size:14px; }
.field .input { flex:1; height:24px; border:1px solid #b9b9b9; border-radius:5px; background:#fff;
  padding:0 8px; display:flex; align-items:center; color:#888; font-size:14px; }
.req { color:#d70015; } .dots { color:#c4c4c4; }
.list { margin:6px 24px 0 198px; background:#f7f7f7; border-radius:8px; }
.item { display:flex; justify-content:space-between; padding:7px 12px; border-bottom:1px solid #e2e2e2; font-size:14px; }
.item:last-child { border-bottom:none; }
.st { font-size:16px; } .st.success{color:#1a8f3c} .st.fail{color:#d70015} .st.wait{color:#0a64d8} .st.pending{color:#888}
.progress { margin:12px 24px 4px; }
.bar { height:8px; background:#d0d0d0; border-radius:4px; overflow:hidden; }
.bar div { height:100%; background:#0a64d8; }
.ptext { text-align:center; font-size:13px; color:#555; margin-top:6px; }
.buttons { display:flex; justify-content:flex-end; padding:14px 24px 18px; gap:10px; }
.button { padding:5px 18px; border-radius:6px; font-size:14px; background:#0a64d8; color:#fff; }
.button.disabled { background:#c9c9c9; color:#f3f3f3; }
.helpbutton { margin-right:auto; width:22px; height:22px; border-radius:11px; background:#fff; border:1px solid #b5b5b5;
  text-align:center; font-size:14px; line-height:22px; color:#444; }
.helpsheet { margin:0 24px 18px; padding:10px 14px; background:#fff8e6; border:1px solid #f0c36d; border-radius:8px; font-size:13px; }
.caption { position:fixed; left:12px; bottom:8px; color:#fff; font-size:12px; opacity:.85; }
"#;

const PLACEHOLDER_ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="150" height="150" viewBox="0 0 150 150"><rect x="10" y="10" width="130" height="130" rx="26" fill="#0a64d8"/><rect x="42" y="40" width="66" height="46" rx="5" fill="#fff"/><rect x="58" y="90" width="34" height="8" fill="#fff"/><rect x="48" y="100" width="54" height="6" rx="3" fill="#fff"/></svg>"##;

/// Image sources for the page: copies of the admin's icon and banner when they exist here.
struct Assets {
    icon: Option<String>,
    banner: Option<String>,
    notes: Vec<String>,
}

fn copy_asset(
    path: Option<&PathBuf>,
    what: &str,
    out_dir: &Path,
    notes: &mut Vec<String>,
    written: &mut Vec<PathBuf>,
) -> Result<Option<String>, PreviewError> {
    let Some(path) = path else {
        return Ok(None);
    };
    if !path.is_file() {
        notes.push(format!(
            "{what} {} is not on this machine; the preview shows a placeholder (on the Mac, \
             prestage leaves out a file that is missing there too and swiftDialog shows its \
             default icon; an app bundle such as Self Service.app shows the app's icon)",
            path.display()
        ));
        return Ok(None);
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("png");
    let name = format!("{what}.{ext}").to_lowercase().replace(' ', "-");
    let dest = out_dir.join(&name);
    std::fs::copy(path, &dest).map_err(io(&dest))?;
    written.push(dest);
    Ok(Some(name))
}

/// One screen as a full HTML page.
fn page(screen: &Screen, ui: &UiConfig, assets: &Assets, caption: &str) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head>",
        escape(&screen.title)
    );
    let blur = ui.full_screen && screen.kind == screen::ScreenKind::Progress;
    let _ = write!(
        h,
        "<body class=\"{}\"><div class=\"window\">",
        if blur { "blur" } else { "" }
    );
    h.push_str("<div class=\"chrome\"><span></span><span></span><span></span></div>");
    if let Some(b) = &assets.banner {
        let _ = write!(h, "<img class=\"banner\" src=\"{}\" alt=\"\">", escape(b));
    }
    let _ = write!(
        h,
        "<div class=\"title\">{}</div><hr>",
        escape(&screen.title)
    );
    h.push_str("<div class=\"body\"><div class=\"icon\">");
    match &assets.icon {
        Some(i) => {
            let _ = write!(h, "<img src=\"{}\" alt=\"\">", escape(i));
        }
        None => h.push_str(PLACEHOLDER_ICON),
    }
    let _ = write!(
        h,
        "</div><div class=\"content\">{}",
        markdown(&screen.message)
    );
    for f in &screen.fields {
        // Secure fields show light placeholder dots, as a password field reads at a glance.
        let shown = if f.secure {
            "<span class=\"dots\">••••••••</span>"
        } else {
            ""
        };
        let _ = write!(
            h,
            "<div class=\"field\"><label>{}{}</label><div class=\"input\">{shown}</div></div>",
            escape(&f.label),
            if f.required {
                "&nbsp;<span class=\"req\">*</span>"
            } else {
                ""
            }
        );
    }
    h.push_str("</div></div>");
    if !screen.items.is_empty() {
        h.push_str("<div class=\"list\">");
        for (title, status) in &screen.items {
            // swiftDialog shows a status icon only (words come with `statustext`, unused).
            let (class, label) = match status {
                ItemStatus::Pending => ("pending", "○"),
                ItemStatus::Wait => ("wait", "◌"),
                ItemStatus::Success => ("success", "✔"),
                ItemStatus::Fail => ("fail", "✖"),
            };
            let _ = write!(
                h,
                "<div class=\"item\"><span>{}</span><span class=\"st {class}\">{label}</span></div>",
                escape(title)
            );
        }
        h.push_str("</div>");
    }
    if let Some(p) = screen.progress {
        let _ = write!(
            h,
            "<div class=\"progress\"><div class=\"bar\"><div style=\"width:{p}%\"></div></div><div class=\"ptext\">{}</div></div>",
            escape(screen.progress_text.as_deref().unwrap_or(""))
        );
    }
    h.push_str("<div class=\"buttons\">");
    // `UI.HelpMessage`: swiftDialog's `?` button, with the sheet it opens drawn below.
    let help = ui.help_message.as_deref().map(|t| {
        let reference = if screen.kind == screen::ScreenKind::Error {
            SAMPLE_REFERENCE
        } else {
            SAMPLE_RUN_ID
        };
        crate::ui::help::fill(
            t,
            Some(crate::config::naming::SAMPLE_SERIAL),
            Some(reference),
        )
    });
    if help.is_some() {
        h.push_str("<span class=\"helpbutton\">?</span>");
    }
    match &screen.button1 {
        Some(b) => {
            let _ = write!(h, "<span class=\"button\">{}</span>", escape(b));
        }
        // The progress window's button is disabled until prestage closes it.
        None => h.push_str("<span class=\"button disabled\">OK</span>"),
    }
    h.push_str("</div>");
    if let Some(help) = help {
        let _ = write!(
            h,
            "<div class=\"helpsheet\"><b>Behind the ? button:</b><br>{}</div>",
            markdown(&help.replace("\\n", "\n"))
        );
    }
    let _ = write!(
        h,
        "</div><div class=\"caption\">{}</div></body></html>",
        escape(caption)
    );
    h
}

/// The reference code of the sample error window, and the enrollment id elsewhere.
const SAMPLE_REFERENCE: &str = "PS-05-3F9A1C";
const SAMPLE_RUN_ID: &str = "3f9a1c07";

fn sample_steps(done: usize) -> Vec<StepItem> {
    [
        "steps.prepare",
        "steps.agent",
        "steps.identity",
        "steps.password",
        "steps.account",
        "steps.finish",
    ]
    .iter()
    .enumerate()
    .map(|(i, id)| StepItem {
        title_id: id,
        status: match i.cmp(&done) {
            std::cmp::Ordering::Less => ItemStatus::Success,
            std::cmp::Ordering::Equal => ItemStatus::Wait,
            std::cmp::Ordering::Greater => ItemStatus::Pending,
        },
    })
    .collect()
}

/// The screens drawn, with a file stem and a caption each.
pub fn sample_screens(ui: &UiConfig, strings: &Strings) -> Vec<(&'static str, String, Screen)> {
    let policy = PasswordPolicy {
        min_length: 12,
        require_uppercase: true,
        require_lowercase: true,
        require_number: true,
        require_symbol: true,
        ..PasswordPolicy::default()
    };
    let password = |unmet: Vec<Rule>, mismatch: bool| PasswordPrompt {
        account: "ada.lovelace".into(),
        policy: policy.clone(),
        unmet,
        mismatch,
        rejected_by_directory: None,
    };
    let progress = |percent, text_id, done| Progress {
        percent,
        text_id,
        args: Vec::new(),
        steps: sample_steps(done),
    };
    vec![
        (
            "01-welcome",
            "1. Welcome (full screen, live status)".into(),
            screen::progress(ui, strings, &progress(5, "progress.installing_agent", 1)),
        ),
        (
            "01b-welcome-battery",
            "1b. Welcome on battery below Preflight.MinimumBatteryPercent (waits for the charger)"
                .into(),
            screen::progress(
                ui,
                strings,
                &Progress {
                    percent: 1,
                    text_id: "preflight.battery",
                    args: vec![("percent", "10".into()), ("minimum", "20".into())],
                    steps: sample_steps(0),
                },
            ),
        ),
        (
            "01c-welcome-offline",
            "1c. Welcome with no network path to JumpCloud (waits)".into(),
            screen::progress(
                ui,
                strings,
                &Progress {
                    percent: 1,
                    text_id: "preflight.offline",
                    args: Vec::new(),
                    steps: sample_steps(0),
                },
            ),
        ),
        (
            "02-identity",
            "2. Who are you (company email, no secret)".into(),
            screen::identity(
                strings,
                &IdentityPrompt {
                    identifier_label_id: "identity.label.company_email",
                    secret_label_id: None,
                    attempts_left: None,
                },
            ),
        ),
        (
            "03-identity-secret-retry",
            "2b. Who are you, with a secret, after a miss".into(),
            screen::identity(
                strings,
                &IdentityPrompt {
                    identifier_label_id: "identity.label.company_email",
                    secret_label_id: Some("identity.secret.employee_id"),
                    attempts_left: Some(3),
                },
            ),
        ),
        (
            "04-identity-locked",
            "2c. Too many attempts (cool-down)".into(),
            screen::identity_rejected(strings, 0, Some(300)),
        ),
        (
            "05-password",
            "3. Choose a password (sample policy: 12 characters, all classes)".into(),
            screen::password(strings, &password(Vec::new(), false)),
        ),
        (
            "06-password-unmet",
            "3b. Choose a password after a try that missed two rules".into(),
            screen::password(
                strings,
                &password(vec![Rule::MinLength(12), Rule::Symbol], false),
            ),
        ),
        (
            "07-password-mismatch",
            "3c. Choose a password after a mismatched confirmation".into(),
            screen::password(strings, &password(Vec::new(), true)),
        ),
        (
            "08-setting-up",
            "4. Setting up your account (live status)".into(),
            screen::progress(ui, strings, &progress(80, "progress.waiting_account", 4)),
        ),
        (
            "09-done",
            "5. Done".into(),
            screen::done(strings, "ada.lovelace"),
        ),
        (
            "09b-done-own-account",
            "5b. Done without a setup account (SSO during Setup Assistant)".into(),
            screen::done_own_account(strings, "ada.lovelace"),
        ),
        (
            "10-error",
            "Error with a reference code".into(),
            screen::fatal(strings, SAMPLE_REFERENCE, "error.agent_timeout"),
        ),
    ]
}

/// Takes a PNG of `html` with headless Chromium; `false` when it did not work (logged).
fn screenshot(chromium: &Path, html: &Path, png: &Path) -> bool {
    let Ok(profile) = tempfile::tempdir() else {
        return false;
    };
    let mut child = match Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={PAGE_WIDTH},{PAGE_HEIGHT}"))
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start chromium; HTML only");
            return false;
        }
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success() && png.is_file(),
            Ok(None) if started.elapsed() > CHROMIUM_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(page = %html.display(), "chromium took too long; no PNG");
                return false;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => return false,
        }
    }
}

/// Writes one HTML file per screen plus `index.html` into `out_dir` (and a PNG of each when
/// [`CHROMIUM`] exists); returns every file written.
pub fn render(
    ui: &UiConfig,
    strings: &Strings,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, PreviewError> {
    render_with(
        ui,
        strings,
        out_dir,
        Path::new(CHROMIUM).is_file().then_some(Path::new(CHROMIUM)),
    )
}

/// [`render`] with an explicit browser (`None`: HTML only).
pub fn render_with(
    ui: &UiConfig,
    strings: &Strings,
    out_dir: &Path,
    chromium: Option<&Path>,
) -> Result<Vec<PathBuf>, PreviewError> {
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let out_dir = out_dir.canonicalize().map_err(io(out_dir))?;
    let mut written = Vec::new();
    let mut notes = Vec::new();
    let assets = Assets {
        icon: copy_asset(ui.icon.as_ref(), "icon", &out_dir, &mut notes, &mut written)?,
        banner: copy_asset(
            ui.banner_image.as_ref(),
            "banner",
            &out_dir,
            &mut notes,
            &mut written,
        )?,
        notes: Vec::new(),
    };
    let assets = Assets { notes, ..assets };
    let mut index = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>prestage screens</title>\
         <style>body{{font-family:sans-serif;margin:24px}} figure{{display:inline-block;margin:12px;\
         vertical-align:top}} img{{width:440px;border:1px solid #ccc}}</style></head><body>\
         <h1>prestage: the employee's screens</h1><p>Language: <b>{}</b>. Texts come from the \
         built-in table and <code>UI.Strings</code>; branding from <code>UI.*</code>.</p>",
        strings.language()
    );
    for note in &assets.notes {
        let _ = write!(index, "<p><b>Note:</b> {}</p>", escape(note));
    }
    for (stem, caption, screen) in sample_screens(ui, strings) {
        let html_path = out_dir.join(format!("{stem}.html"));
        std::fs::write(&html_path, page(&screen, ui, &assets, &caption)).map_err(io(&html_path))?;
        written.push(html_path.clone());
        let png_path = out_dir.join(format!("{stem}.png"));
        let has_png = chromium.is_some_and(|c| screenshot(c, &html_path, &png_path));
        if has_png {
            written.push(png_path);
        }
        let _ = write!(
            index,
            "<figure><a href=\"{stem}.html\">{}</a><figcaption>{}</figcaption></figure>",
            if has_png {
                format!("<img src=\"{stem}.png\" alt=\"\">")
            } else {
                escape(&screen.title)
            },
            escape(&caption)
        );
    }
    index.push_str("</body></html>");
    let index_path = out_dir.join("index.html");
    std::fs::write(&index_path, index).map_err(io(&index_path))?;
    written.push(index_path);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_subset() {
        assert_eq!(
            markdown("## Hi <you>\n\nA **b** c\nd\n\nRules:\n- one\n- two"),
            "<h2>Hi &lt;you&gt;</h2><p>A <strong>b</strong> c<br>d</p><p>Rules:</p><ul><li>one</li><li>two</li></ul>"
        );
    }

    #[test]
    fn writes_every_screen_and_an_index_without_a_browser() {
        let dir = tempfile::tempdir().unwrap();
        let ui = UiConfig {
            welcome_title: Some("Welcome to ACME".into()),
            icon: Some(PathBuf::from("/nonexistent/icon.png")),
            ..UiConfig::default()
        };
        let files = render_with(&ui, &Strings::default(), dir.path(), None).unwrap();
        assert_eq!(
            files.len(),
            sample_screens(&ui, &Strings::default()).len() + 1
        );
        let welcome = std::fs::read_to_string(dir.path().join("01-welcome.html")).unwrap();
        assert!(welcome.contains("Welcome to ACME"));
        let index = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
        assert!(index.contains("not on this machine"));
    }
}
