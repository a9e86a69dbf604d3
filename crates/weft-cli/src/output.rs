//! How results reach the user: pretty JSON on stdout with `--json`,
//! readable text otherwise.

use serde_json::Value;

/// The output mode chosen by the global `--json` flag.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Print JSON instead of text.
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON, or the text `human` builds.
    pub fn emit(&self, value: &Value, human: impl FnOnce() -> String) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
            );
        } else {
            println!("{}", human());
        }
    }

    /// A progress note: to stderr in text mode, dropped in JSON mode so
    /// stdout stays parseable.
    pub fn note(&self, text: impl AsRef<str>) {
        if !self.json {
            eprintln!("{}", text.as_ref());
        }
    }

    /// Reports a failure: `{"error": …}` on stdout in JSON mode, else
    /// `error: …` on stderr.
    pub fn error(&self, error: &anyhow::Error) {
        if self.json {
            println!("{}", serde_json::json!({ "error": format!("{error:#}") }));
        } else {
            eprintln!("error: {error:#}");
        }
    }
}
