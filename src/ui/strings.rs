//! Every text the employee sees, by id, with built-in English, German, French, Spanish,
//! Italian, Dutch, Portuguese (Brazil) and Japanese tables (the last five in `strings/`).
//!
//! Lookup order for an id: the admin's `UI.Strings` override, then the chosen language's table,
//! then English. `{name}` placeholders are filled by [`Strings::format`]. `config check` calls
//! [`is_known_id`] to reject overrides of ids that do not exist (a typo would otherwise be
//! silently ignored). The language comes from `UI.Language` or the console user's preferred
//! languages through [`pick_language`], a pure function the engine feeds.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::policy::{Rule, RuleCheck, RuleStatus};

/// The languages with a built-in table, English first (the fallback).
pub const LANGUAGES: &[&str] = &["en", "de", "fr", "es", "it", "nl", "pt", "ja"];

mod es;
mod it;
mod ja;
mod nl;
mod pt_br;

/// English: the reference table. Every id exists here; the order is the order of [`IDS`].
const EN: &[(&str, &str)] = &[
    // Window and welcome.
    ("window.title", "Setting up your Mac"),
    ("welcome.title", "Welcome to your new Mac"),
    (
        "welcome.text",
        "We are getting this Mac ready for you. This takes a few minutes.\n\nPlease keep it plugged in and connected to the internet.",
    ),
    ("button.continue", "Continue"),
    ("button.ok", "OK"),
    ("button.log_out", "Log out now"),
    // Status texts of the progress window, one per engine step.
    ("progress.preflight", "Checking this Mac…"),
    ("progress.waiting_desktop", "Waiting for the desktop…"),
    ("progress.installing_agent", "Installing the JumpCloud agent…"),
    ("progress.waiting_agent", "Connecting this Mac to JumpCloud…"),
    ("progress.joining_group", "Registering this Mac…"),
    ("progress.reading_policy", "Reading your company's password rules…"),
    ("progress.identity", "Waiting for you to confirm who you are…"),
    ("progress.finding_account", "Finding your company account…"),
    ("progress.password", "Waiting for your new password…"),
    ("progress.binding", "Linking your account to this Mac…"),
    ("progress.waiting_account", "Creating your account on this Mac…"),
    ("progress.handover", "Handing this Mac over to you…"),
    ("progress.cleanup", "Tidying up…"),
    ("progress.done", "All done."),
    ("progress.retrying", "This is taking longer than usual. Trying again…"),
    (
        "preflight.battery",
        "The battery is at {percent} %. Please plug in the charger: setup continues once it is connected (at least {minimum} % is needed on battery).",
    ),
    (
        "preflight.offline",
        "This Mac cannot reach the internet. Please connect it to Wi-Fi or a network cable: setup continues by itself once it is online.",
    ),
    // The step list of the progress window.
    ("steps.prepare", "Prepare this Mac"),
    ("steps.agent", "Install JumpCloud"),
    ("steps.identity", "Confirm who you are"),
    ("steps.password", "Choose your password"),
    ("steps.account", "Set up your account"),
    ("steps.finish", "Finish"),
    // Who are you.
    ("identity.title", "Who are you?"),
    (
        "identity.message",
        "Please tell us who you are, so we can connect this Mac to your company account.",
    ),
    ("identity.label.company_email", "Your company email address"),
    ("identity.label.personal_email", "Your personal email address"),
    ("identity.label.last_name", "Your last name"),
    ("identity.label.username", "Your username"),
    ("identity.secret.employee_id", "Your employee ID"),
    ("identity.secret.attribute", "Your enrollment code"),
    ("identity.invalid_email", "Please enter an email address such as name@example.com."),
    (
        "identity.retry",
        "We could not confirm who you are. Please check what you typed and try again.",
    ),
    ("identity.attempts_left", "Attempts left: {attempts}"),
    ("identity.rejected.title", "We could not confirm who you are"),
    (
        "identity.locked",
        "Too many attempts. Please wait {minutes} minutes before trying again, or contact IT.",
    ),
    // Choose a password.
    ("password.title", "Choose your password"),
    (
        "password.message",
        "This will be the password of your account **{account}**, on this Mac and for your company services.",
    ),
    ("password.rules", "Your password needs:"),
    ("password.rule.min_length", "at least {count} characters"),
    ("password.rule.uppercase", "an upper-case letter (A–Z)"),
    ("password.rule.lowercase", "a lower-case letter (a–z)"),
    ("password.rule.number", "a number (0–9)"),
    ("password.rule.symbol", "a symbol such as ! # or %"),
    // The tenant's rules beyond length and character classes (v1.json `passwordPolicy`).
    ("password.rule.no_username", "no trace of your username"),
    (
        "password.rule.no_sequences",
        "no three repeated or consecutive letters or digits in a row (such as aaa, abc or 321)",
    ),
    ("password.rule.not_common", "to be something other than a commonly used password"),
    ("password.rule.history", "to differ from your last {count} passwords"),
    ("password.rule.min_age", "to come at least {days} days after your last password change"),
    ("password.rule.checked_by_directory", "{rule} (JumpCloud checks this when you continue)"),
    ("password.unmet", "Your password does not meet every rule yet."),
    ("password.rule.met", "✓ {rule}"),
    ("password.rule.unmet", "✗ **{rule}**"),
    ("password.mismatch", "The two passwords do not match. Please type them again."),
    ("password.rejected", "Your company directory did not accept this password: {reason}"),
    ("password.label", "New password"),
    ("password.confirm_label", "Type it again"),
    // Done.
    ("done.title", "You are all set"),
    (
        "done.message",
        "Your account **{account}** is ready.\n\nThis Mac will now log out. Then log in with your company username and password.",
    ),
    (
        "done.own_account_message",
        "Your account **{account}** is now connected to your company account.\n\nFrom now on, use your company (JumpCloud) password to log in to and unlock this Mac. You can keep working: nothing logs out.",
    ),
    // Errors the employee cannot fix.
    ("error.title", "Setup could not finish"),
    (
        "error.message",
        "{detail}\n\nPlease contact IT and give them this reference: **{reference}**",
    ),
    ("error.agent_install", "The JumpCloud agent could not be installed."),
    ("error.agent_timeout", "This Mac could not connect to JumpCloud in time."),
    ("error.takeover_timeout", "Your account could not be set up on this Mac in time."),
    ("error.configuration", "The setup of this Mac is not configured correctly."),
    ("error.directory", "Your company directory could not be reached or refused a request."),
    ("error.preset", "Your company directory does not list exactly one account for the person this Mac was assigned to."),
    (
        "error.no_secure_token",
        "This Mac has no account that can unlock its disk for your new account.",
    ),
    ("error.generic", "Something unexpected went wrong."),
];

/// German. Must cover every id (a test checks).
const DE: &[(&str, &str)] = &[
    ("window.title", "Ihr Mac wird eingerichtet"),
    ("welcome.title", "Willkommen an Ihrem neuen Mac"),
    (
        "welcome.text",
        "Wir bereiten diesen Mac für Sie vor. Das dauert ein paar Minuten.\n\nBitte lassen Sie ihn am Strom und mit dem Internet verbunden.",
    ),
    ("button.continue", "Weiter"),
    ("button.ok", "OK"),
    ("button.log_out", "Jetzt abmelden"),
    ("progress.preflight", "Dieser Mac wird geprüft …"),
    ("progress.waiting_desktop", "Warten auf den Schreibtisch …"),
    ("progress.installing_agent", "Der JumpCloud-Agent wird installiert …"),
    ("progress.waiting_agent", "Dieser Mac wird mit JumpCloud verbunden …"),
    ("progress.joining_group", "Dieser Mac wird angemeldet …"),
    ("progress.reading_policy", "Die Passwortregeln Ihres Unternehmens werden gelesen …"),
    ("progress.identity", "Warten auf Ihre Angaben …"),
    ("progress.finding_account", "Ihr Firmenkonto wird gesucht …"),
    ("progress.password", "Warten auf Ihr neues Passwort …"),
    ("progress.binding", "Ihr Konto wird mit diesem Mac verknüpft …"),
    ("progress.waiting_account", "Ihr Konto wird auf diesem Mac angelegt …"),
    ("progress.handover", "Dieser Mac wird an Sie übergeben …"),
    ("progress.cleanup", "Es wird aufgeräumt …"),
    ("progress.done", "Fertig."),
    ("progress.retrying", "Das dauert länger als sonst. Neuer Versuch …"),
    (
        "preflight.battery",
        "Der Akku ist bei {percent} %. Bitte schließen Sie das Netzteil an: Die Einrichtung geht weiter, sobald es verbunden ist (im Akkubetrieb sind mindestens {minimum} % nötig).",
    ),
    (
        "preflight.offline",
        "Dieser Mac erreicht das Internet nicht. Bitte verbinden Sie ihn mit dem WLAN oder einem Netzwerkkabel: Die Einrichtung geht von selbst weiter, sobald er online ist.",
    ),
    ("steps.prepare", "Mac vorbereiten"),
    ("steps.agent", "JumpCloud installieren"),
    ("steps.identity", "Ihre Identität bestätigen"),
    ("steps.password", "Passwort wählen"),
    ("steps.account", "Konto einrichten"),
    ("steps.finish", "Abschließen"),
    ("identity.title", "Wer sind Sie?"),
    (
        "identity.message",
        "Bitte sagen Sie uns, wer Sie sind, damit wir diesen Mac mit Ihrem Firmenkonto verbinden können.",
    ),
    ("identity.label.company_email", "Ihre geschäftliche E-Mail-Adresse"),
    ("identity.label.personal_email", "Ihre private E-Mail-Adresse"),
    ("identity.label.last_name", "Ihr Nachname"),
    ("identity.label.username", "Ihr Benutzername"),
    ("identity.secret.employee_id", "Ihre Personalnummer"),
    ("identity.secret.attribute", "Ihr Registrierungscode"),
    ("identity.invalid_email", "Bitte geben Sie eine E-Mail-Adresse wie name@example.com ein."),
    (
        "identity.retry",
        "Wir konnten Sie nicht zuordnen. Bitte prüfen Sie Ihre Eingabe und versuchen Sie es erneut.",
    ),
    ("identity.attempts_left", "Verbleibende Versuche: {attempts}"),
    ("identity.rejected.title", "Wir konnten Sie nicht zuordnen"),
    (
        "identity.locked",
        "Zu viele Versuche. Bitte warten Sie {minutes} Minuten und versuchen Sie es dann erneut, oder wenden Sie sich an die IT.",
    ),
    ("password.title", "Wählen Sie Ihr Passwort"),
    (
        "password.message",
        "Das wird das Passwort Ihres Kontos **{account}**, auf diesem Mac und für die Dienste Ihres Unternehmens.",
    ),
    ("password.rules", "Ihr Passwort braucht:"),
    ("password.rule.min_length", "mindestens {count} Zeichen"),
    ("password.rule.uppercase", "einen Großbuchstaben (A–Z)"),
    ("password.rule.lowercase", "einen Kleinbuchstaben (a–z)"),
    ("password.rule.number", "eine Ziffer (0–9)"),
    ("password.rule.symbol", "ein Sonderzeichen wie ! # oder %"),
    (
        "password.rule.no_username",
        "keine Übereinstimmung mit Ihrem Benutzernamen, auch nicht als Teil",
    ),
    (
        "password.rule.no_sequences",
        "keine drei gleichen oder aufeinanderfolgenden Buchstaben oder Ziffern in Folge (wie aaa, abc oder 321)",
    ),
    ("password.rule.not_common", "keine Übereinstimmung mit häufig verwendeten Passwörtern"),
    ("password.rule.history", "einen Unterschied zu Ihren letzten {count} Passwörtern"),
    ("password.rule.min_age", "mindestens {days} Tage Abstand zu Ihrer letzten Passwortänderung"),
    ("password.rule.checked_by_directory", "{rule} (prüft JumpCloud, wenn Sie fortfahren)"),
    ("password.unmet", "Ihr Passwort erfüllt noch nicht alle Regeln."),
    ("password.rule.met", "✓ {rule}"),
    ("password.rule.unmet", "✗ **{rule}**"),
    (
        "password.mismatch",
        "Die beiden Passwörter stimmen nicht überein. Bitte geben Sie sie erneut ein.",
    ),
    ("password.rejected", "Ihr Firmenverzeichnis hat dieses Passwort abgelehnt: {reason}"),
    ("password.label", "Neues Passwort"),
    ("password.confirm_label", "Passwort wiederholen"),
    ("done.title", "Alles bereit"),
    (
        "done.message",
        "Ihr Konto **{account}** ist bereit.\n\nDieser Mac meldet sich jetzt ab. Melden Sie sich danach mit Ihrem Firmen-Benutzernamen und Passwort an.",
    ),
    (
        "done.own_account_message",
        "Ihr Konto **{account}** ist jetzt mit Ihrem Firmenkonto verbunden.\n\nVerwenden Sie ab sofort Ihr Firmenpasswort (JumpCloud), um sich an diesem Mac anzumelden und ihn zu entsperren. Sie können weiterarbeiten: Sie werden nicht abgemeldet.",
    ),
    ("error.title", "Die Einrichtung konnte nicht abgeschlossen werden"),
    (
        "error.message",
        "{detail}\n\nBitte wenden Sie sich an die IT und nennen Sie diese Referenz: **{reference}**",
    ),
    ("error.agent_install", "Der JumpCloud-Agent konnte nicht installiert werden."),
    ("error.agent_timeout", "Dieser Mac konnte sich nicht rechtzeitig mit JumpCloud verbinden."),
    (
        "error.takeover_timeout",
        "Ihr Konto konnte nicht rechtzeitig auf diesem Mac eingerichtet werden.",
    ),
    ("error.configuration", "Die Einrichtung dieses Macs ist nicht richtig konfiguriert."),
    (
        "error.directory",
        "Ihr Firmenverzeichnis war nicht erreichbar oder hat eine Anfrage abgelehnt.",
    ),
    (
        "error.preset",
        "Ihr Firmenverzeichnis führt nicht genau ein Konto für die Person, der dieser Mac zugewiesen wurde.",
    ),
    (
        "error.no_secure_token",
        "Auf diesem Mac gibt es kein Konto, das die Festplatte für Ihr neues Konto freigeben kann.",
    ),
    ("error.generic", "Etwas Unerwartetes ist schiefgegangen."),
];

/// French.
const FR: &[(&str, &str)] = &[
    ("window.title", "Configuration de votre Mac"),
    ("welcome.title", "Bienvenue sur votre nouveau Mac"),
    (
        "welcome.text",
        "Nous préparons ce Mac pour vous. Cela prend quelques minutes.\n\nGardez-le branché et connecté à Internet.",
    ),
    ("button.continue", "Continuer"),
    ("button.ok", "OK"),
    ("button.log_out", "Se déconnecter"),
    ("progress.preflight", "Vérification de ce Mac…"),
    ("progress.waiting_desktop", "En attente du bureau…"),
    ("progress.installing_agent", "Installation de l’agent JumpCloud…"),
    ("progress.waiting_agent", "Connexion de ce Mac à JumpCloud…"),
    ("progress.joining_group", "Enregistrement de ce Mac…"),
    ("progress.reading_policy", "Lecture des règles de mot de passe de votre entreprise…"),
    ("progress.identity", "En attente de votre identification…"),
    ("progress.finding_account", "Recherche de votre compte d’entreprise…"),
    ("progress.password", "En attente de votre nouveau mot de passe…"),
    ("progress.binding", "Association de votre compte à ce Mac…"),
    ("progress.waiting_account", "Création de votre compte sur ce Mac…"),
    ("progress.handover", "Remise de ce Mac entre vos mains…"),
    ("progress.cleanup", "Rangement…"),
    ("progress.done", "Terminé."),
    ("progress.retrying", "Cela prend plus de temps que prévu. Nouvel essai…"),
    (
        "preflight.battery",
        "La batterie est à {percent} %. Veuillez brancher le chargeur : la configuration reprendra dès qu’il sera connecté (au moins {minimum} % sont nécessaires sur batterie).",
    ),
    (
        "preflight.offline",
        "Ce Mac n’accède pas à Internet. Veuillez le connecter au Wi-Fi ou à un câble réseau : la configuration reprendra d’elle-même dès qu’il sera en ligne.",
    ),
    ("steps.prepare", "Préparer ce Mac"),
    ("steps.agent", "Installer JumpCloud"),
    ("steps.identity", "Confirmer votre identité"),
    ("steps.password", "Choisir votre mot de passe"),
    ("steps.account", "Configurer votre compte"),
    ("steps.finish", "Terminer"),
    ("identity.title", "Qui êtes-vous ?"),
    (
        "identity.message",
        "Indiquez-nous qui vous êtes, afin que nous puissions relier ce Mac à votre compte d’entreprise.",
    ),
    ("identity.label.company_email", "Votre adresse e-mail professionnelle"),
    ("identity.label.personal_email", "Votre adresse e-mail personnelle"),
    ("identity.label.last_name", "Votre nom de famille"),
    ("identity.label.username", "Votre nom d’utilisateur"),
    ("identity.secret.employee_id", "Votre matricule"),
    ("identity.secret.attribute", "Votre code d’inscription"),
    ("identity.invalid_email", "Saisissez une adresse e-mail telle que nom@example.com."),
    (
        "identity.retry",
        "Nous n’avons pas pu vous identifier. Vérifiez votre saisie et réessayez.",
    ),
    ("identity.attempts_left", "Essais restants : {attempts}"),
    ("identity.rejected.title", "Nous n’avons pas pu vous identifier"),
    (
        "identity.locked",
        "Trop d’essais. Patientez {minutes} minutes avant de réessayer, ou contactez le service informatique.",
    ),
    ("password.title", "Choisissez votre mot de passe"),
    (
        "password.message",
        "Ce sera le mot de passe de votre compte **{account}**, sur ce Mac et pour les services de votre entreprise.",
    ),
    ("password.rules", "Votre mot de passe doit contenir :"),
    ("password.rule.min_length", "au moins {count} caractères"),
    ("password.rule.uppercase", "une majuscule (A–Z)"),
    ("password.rule.lowercase", "une minuscule (a–z)"),
    ("password.rule.number", "un chiffre (0–9)"),
    ("password.rule.symbol", "un symbole comme ! # ou %"),
    ("password.rule.no_username", "aucune trace de votre nom d’utilisateur"),
    (
        "password.rule.no_sequences",
        "aucune suite de trois lettres ou chiffres identiques ou consécutifs (comme aaa, abc ou 321)",
    ),
    ("password.rule.not_common", "autre chose qu’un mot de passe courant"),
    ("password.rule.history", "autre chose que vos {count} derniers mots de passe"),
    (
        "password.rule.min_age",
        "une date de changement au moins {days} jours après votre dernier changement",
    ),
    (
        "password.rule.checked_by_directory",
        "{rule} (vérifié par JumpCloud quand vous continuez)",
    ),
    ("password.unmet", "Votre mot de passe ne respecte pas encore toutes les règles."),
    ("password.rule.met", "✓ {rule}"),
    ("password.rule.unmet", "✗ **{rule}**"),
    (
        "password.mismatch",
        "Les deux mots de passe ne correspondent pas. Saisissez-les à nouveau.",
    ),
    ("password.rejected", "L’annuaire de votre entreprise a refusé ce mot de passe : {reason}"),
    ("password.label", "Nouveau mot de passe"),
    ("password.confirm_label", "Saisissez-le à nouveau"),
    ("done.title", "Tout est prêt"),
    (
        "done.message",
        "Votre compte **{account}** est prêt.\n\nCe Mac va maintenant fermer la session. Connectez-vous ensuite avec votre nom d’utilisateur et votre mot de passe d’entreprise.",
    ),
    (
        "done.own_account_message",
        "Votre compte **{account}** est maintenant relié à votre compte d’entreprise.\n\nDésormais, utilisez votre mot de passe d’entreprise (JumpCloud) pour vous connecter à ce Mac et le déverrouiller. Vous pouvez continuer à travailler : la session reste ouverte.",
    ),
    ("error.title", "La configuration n’a pas pu aboutir"),
    (
        "error.message",
        "{detail}\n\nContactez le service informatique et donnez-lui cette référence : **{reference}**",
    ),
    ("error.agent_install", "L’agent JumpCloud n’a pas pu être installé."),
    ("error.agent_timeout", "Ce Mac n’a pas pu se connecter à JumpCloud à temps."),
    ("error.takeover_timeout", "Votre compte n’a pas pu être configuré sur ce Mac à temps."),
    ("error.configuration", "La configuration de ce Mac n’est pas correcte."),
    (
        "error.directory",
        "L’annuaire de votre entreprise était injoignable ou a refusé une demande.",
    ),
    (
        "error.preset",
        "L’annuaire de votre entreprise ne contient pas exactement un compte pour la personne à qui ce Mac a été attribué.",
    ),
    (
        "error.no_secure_token",
        "Ce Mac n’a aucun compte capable de déverrouiller son disque pour votre nouveau compte.",
    ),
    ("error.generic", "Une erreur inattendue s’est produite."),
];

const IDS_ARRAY: [&str; EN.len()] = {
    let mut ids = [""; EN.len()];
    let mut i = 0;
    while i < EN.len() {
        ids[i] = EN[i].0;
        i += 1;
    }
    ids
};

/// Every string id, in the order of the English table.
pub const IDS: &[&str] = &IDS_ARRAY;

/// Whether `id` names a built-in text (what `config check` accepts in `UI.Strings`).
pub fn is_known_id(id: &str) -> bool {
    IDS.contains(&id)
}

/// The built-in table of a language (`None` for a language without one).
pub fn table(language: &str) -> Option<&'static [(&'static str, &'static str)]> {
    match language {
        "en" => Some(EN),
        "de" => Some(DE),
        "fr" => Some(FR),
        "es" => Some(es::TABLE),
        "it" => Some(it::TABLE),
        "nl" => Some(nl::TABLE),
        // Brazilian Portuguese, also for pt-PT (closer than English).
        "pt" => Some(pt_br::TABLE),
        "ja" => Some(ja::TABLE),
        _ => None,
    }
}

fn lookup(table: &[(&'static str, &'static str)], id: &str) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == id).map(|(_, v)| *v)
}

/// The primary language subtag of a locale-ish code: `de-CH` (macOS `AppleLanguages`),
/// `de_DE.UTF-8` (`LANG`), `zh-Hans-CN` → `de`, `de`, `zh`. `C`/`POSIX` and empty give `None`.
fn primary_subtag(code: &str) -> Option<String> {
    let code = code.trim();
    let end = code.find(['-', '_', '.', '@']).unwrap_or(code.len());
    let primary = code[..end].to_ascii_lowercase();
    if primary.is_empty() || primary == "c" || primary == "posix" {
        return None;
    }
    Some(primary)
}

/// Picks the table: `UI.Language` when it has a table, else the first of the console user's
/// preferred languages (`AppleLanguages` order, or `LANG`) that has one, else English.
pub fn pick_language(configured: Option<&str>, candidates: &[String]) -> &'static str {
    configured
        .into_iter()
        .chain(candidates.iter().map(String::as_str))
        .filter_map(primary_subtag)
        .find_map(|code| LANGUAGES.iter().copied().find(|lang| *lang == code))
        .unwrap_or("en")
}

/// The console user's preferred languages, most preferred first: `AppleLanguages` of
/// `/Users/<user>/Library/Preferences/.GlobalPreferences.plist` (what System Settings →
/// Language & Region writes), then the `LANG` of this process. Empty when neither is there;
/// nothing here fails, because English is always a fine answer. Feed it to [`pick_language`].
///
/// The file is the user's own (they may put a FIFO, a link to `/dev/zero` or 50 MB there): it
/// is read as [`crate::host::untrusted`] says, off the runtime thread, with a time limit.
pub async fn user_languages(root: &crate::paths::Root, user: &str) -> Vec<String> {
    /// A real `.GlobalPreferences.plist` is a few KB.
    const LIMIT: u64 = 1 << 20;
    let mut out = Vec::new();
    // A user name with a slash would walk out of /Users; such a name is not a macOS account.
    if !user.is_empty() && !user.contains('/') {
        let path = root.resolve(format!(
            "/Users/{user}/Library/Preferences/.GlobalPreferences.plist"
        ));
        let value = match crate::host::untrusted::read_async(path, LIMIT).await {
            Ok(bytes) => plist::Value::from_reader(std::io::Cursor::new(bytes)).ok(),
            Err(e) => {
                if !matches!(&e, crate::host::untrusted::UntrustedError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
                {
                    tracing::warn!(error = %e, "the console user's language preferences were not read; using the configured or default language");
                }
                None
            }
        };
        if let Some(value) = value {
            if let Some(langs) = value
                .as_dictionary()
                .and_then(|d| d.get("AppleLanguages"))
                .and_then(plist::Value::as_array)
            {
                out.extend(
                    langs
                        .iter()
                        .filter_map(|v| v.as_string().map(str::to_owned)),
                );
            }
        }
    }
    if let Ok(lang) = std::env::var("LANG") {
        out.push(lang);
    }
    out
}

/// The text of one password rule (SPEC §6 screen 3), e.g. "at least 12 characters".
pub fn rule_text(strings: &Strings, rule: Rule) -> String {
    match rule {
        Rule::MinLength(n) => {
            strings.format("password.rule.min_length", &[("count", &n.to_string())])
        }
        Rule::Uppercase => strings.get("password.rule.uppercase").into_owned(),
        Rule::Lowercase => strings.get("password.rule.lowercase").into_owned(),
        Rule::Number => strings.get("password.rule.number").into_owned(),
        Rule::Symbol => strings.get("password.rule.symbol").into_owned(),
        Rule::NoUsername => strings.get("password.rule.no_username").into_owned(),
        Rule::NoSequences => strings.get("password.rule.no_sequences").into_owned(),
        Rule::NotCommon => strings.get("password.rule.not_common").into_owned(),
        Rule::History(n) => strings.format("password.rule.history", &[("count", &n.to_string())]),
        Rule::MinAge(n) => strings.format("password.rule.min_age", &[("days", &n.to_string())]),
    }
}

/// One line of the rule list: the rule's text and, for a rule only JumpCloud can check, that
/// JumpCloud checks it (the employee learns the verdict when the password is set).
pub fn rule_line(strings: &Strings, check: RuleCheck) -> String {
    let text = rule_text(strings, check.rule);
    if check.status == RuleStatus::CheckedByDirectory {
        strings.format("password.rule.checked_by_directory", &[("rule", &text)])
    } else {
        text
    }
}

/// Fills `{name}` placeholders of `template` from `args`; unknown placeholders stay as they are
/// (an admin's override with a typo shows the typo rather than vanishing).
pub fn fill(template: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let name = &after[..close];
        if let Some((_, value)) = args.iter().find(|(k, _)| *k == name) {
            out.push_str(value);
        } else {
            out.push('{');
            out.push_str(name);
            out.push('}');
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The employee's texts in one language, with the admin's overrides.
#[derive(Debug, Clone)]
pub struct Strings {
    language: &'static str,
    overrides: BTreeMap<String, String>,
}

impl Default for Strings {
    fn default() -> Self {
        Self::new("en", &BTreeMap::new())
    }
}

impl Strings {
    /// `language` is a code such as `de` or `de-CH`; one without a table means English.
    /// Overrides of unknown ids are dropped with a warning (`config check` rejects them).
    pub fn new(language: &str, overrides: &BTreeMap<String, String>) -> Self {
        let language = pick_language(Some(language), &[]);
        let mut kept = BTreeMap::new();
        for (id, text) in overrides {
            if is_known_id(id) {
                kept.insert(id.clone(), text.clone());
            } else {
                tracing::warn!(id = %id, "UI.Strings overrides an unknown string id; ignored");
            }
        }
        Self {
            language,
            overrides: kept,
        }
    }

    /// The texts for a configuration: `UI.Language` when it has a table, else the first of the
    /// console user's languages (see [`user_languages`]) that has one, else English; with the
    /// `UI.Strings` overrides.
    pub fn from_config(ui: &crate::config::UiConfig, console_languages: &[String]) -> Self {
        let language = pick_language(ui.language.as_deref(), console_languages);
        Self::new(language, &ui.strings)
    }

    /// The language of the table in use (`en`, `de`, `fr`).
    pub fn language(&self) -> &'static str {
        self.language
    }

    /// The text of `id`. An id with no text anywhere (a bug) comes back as the id itself.
    pub fn get(&self, id: &str) -> Cow<'_, str> {
        if let Some(text) = self.overrides.get(id) {
            return Cow::Borrowed(text.as_str());
        }
        table(self.language)
            .and_then(|t| lookup(t, id))
            .or_else(|| lookup(EN, id))
            .map_or_else(|| Cow::Owned(id.to_owned()), Cow::Borrowed)
    }

    /// The text of `id` with its `{name}` placeholders filled from `args`.
    pub fn format(&self, id: &str, args: &[(&str, &str)]) -> String {
        fill(&self.get(id), args)
    }
}

#[cfg(test)]
mod tests;
