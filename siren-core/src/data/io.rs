//! Reading line-oriented files, gzip or plain, with file and line context on every error.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::{CoreError, Result};

/// Opens `path` for reading, transparently decompressing gzip (detected by its magic bytes,
/// not the file name). The file is opened once; the magic is peeked from the buffer.
pub fn open(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let file = File::open(path).map_err(|e| CoreError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let gzip = reader
        .fill_buf()
        .map_err(|e| CoreError::io(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    if gzip {
        Ok(Box::new(BufReader::new(MultiGzDecoder::new(reader))))
    } else {
        Ok(Box::new(reader))
    }
}

/// Lines of a file with their 1-based numbers. Read errors (including a corrupt gzip stream)
/// name the file and line.
pub struct Lines {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    line: usize,
    buf: String,
}

impl Lines {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            reader: open(path)?,
            line: 0,
            buf: String::new(),
        })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Next line (without its line ending) and its number, or `None` at the end.
    pub fn next_line(&mut self) -> Result<Option<(usize, &str)>> {
        self.buf.clear();
        self.line += 1;
        match self.reader.read_line(&mut self.buf) {
            Ok(0) => Ok(None),
            Ok(_) => {
                let s = self.buf.trim_end_matches(['\n', '\r']);
                Ok(Some((self.line, s)))
            }
            Err(e) => Err(CoreError::Parse {
                path: self.path.clone(),
                line: self.line,
                field: None,
                message: format!("cannot read line: {e}"),
            }),
        }
    }
}

/// What to do with a malformed or out-of-range record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBadRow {
    /// Stop with an error naming file, line and field (default).
    #[default]
    Error,
    /// Skip the record and count it; the count is logged.
    Skip,
}

/// Applies an [`OnBadRow`] policy and counts skipped rows.
#[derive(Debug, Default)]
pub struct BadRows {
    policy: OnBadRow,
    skipped: usize,
    first: Option<String>,
}

impl BadRows {
    /// A counter with `policy`.
    pub fn new(policy: OnBadRow) -> Self {
        Self {
            policy,
            skipped: 0,
            first: None,
        }
    }

    /// Returns `Err(e)` under [`OnBadRow::Error`], otherwise counts it and returns `Ok(())`.
    pub fn handle(&mut self, e: CoreError) -> Result<()> {
        match self.policy {
            OnBadRow::Error => Err(e),
            OnBadRow::Skip => {
                self.skipped += 1;
                if self.first.is_none() {
                    self.first = Some(e.to_string());
                }
                Ok(())
            }
        }
    }

    /// Rows skipped so far.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Logs the count (with the first reason) when rows were skipped.
    pub fn report(&self, what: &str) {
        if self.skipped > 0 {
            tracing::warn!(
                "skipped {} bad rows in {what} (first: {})",
                self.skipped,
                self.first.as_deref().unwrap_or("")
            );
        }
    }
}

/// One JSON object of a JSONL file, with accessors whose errors name file, line and field.
pub struct JsonRow<'a> {
    path: &'a Path,
    line: usize,
    obj: serde_json::Map<String, serde_json::Value>,
}

impl<'a> JsonRow<'a> {
    /// Parses `text` (line `line` of `path`) as a JSON object.
    pub fn parse(path: &'a Path, line: usize, text: &str) -> Result<Self> {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(obj)) => Ok(Self { path, line, obj }),
            Ok(other) => Err(CoreError::Parse {
                path: path.to_path_buf(),
                line,
                field: None,
                message: format!("expected a JSON object, found {}", json_kind(&other)),
            }),
            Err(e) => Err(CoreError::Parse {
                path: path.to_path_buf(),
                line,
                field: None,
                message: format!("invalid JSON: {e}"),
            }),
        }
    }

    /// An error about `field` of this row.
    pub fn error(&self, field: &str, message: impl Into<String>) -> CoreError {
        CoreError::Parse {
            path: self.path.to_path_buf(),
            line: self.line,
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    fn get(&self, field: &str) -> Result<&serde_json::Value> {
        match self.obj.get(field) {
            Some(serde_json::Value::Null) | None => Err(self.error(field, "missing")),
            Some(v) => Ok(v),
        }
    }

    /// Whether `field` is present and not null.
    pub fn has(&self, field: &str) -> bool {
        !matches!(self.obj.get(field), None | Some(serde_json::Value::Null))
    }

    /// A string field.
    pub fn str(&self, field: &str) -> Result<&str> {
        match self.get(field)? {
            serde_json::Value::String(s) => Ok(s),
            v => Err(self.error(field, format!("expected a string, found {}", json_kind(v)))),
        }
    }

    /// A string field, or `""` when absent.
    pub fn str_or_empty(&self, field: &str) -> Result<&str> {
        if self.has(field) {
            self.str(field)
        } else {
            Ok("")
        }
    }

    /// A number field (a numeric string is accepted).
    pub fn f64(&self, field: &str) -> Result<f64> {
        let v = self.get(field)?;
        let x = match v {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match x {
            Some(x) if x.is_finite() => Ok(x),
            _ => Err(self.error(field, format!("expected a number, found {v}"))),
        }
    }

    /// An integer field (a float with no fractional part or a numeric string is accepted).
    pub fn i64(&self, field: &str) -> Result<i64> {
        let v = self.get(field)?;
        let x = match v {
            serde_json::Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
            serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        x.ok_or_else(|| self.error(field, format!("expected an integer, found {v}")))
    }

    /// A list of strings; also accepts a string holding a Python/JSON list literal such as
    /// `"['a', 'b']"`. Numbers are rendered as strings.
    pub fn str_list(&self, field: &str) -> Result<Vec<String>> {
        let v = self.get(field)?;
        match v {
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| match x {
                    serde_json::Value::String(s) => Ok(s.clone()),
                    serde_json::Value::Number(n) => Ok(n.to_string()),
                    other => Err(self.error(
                        field,
                        format!("expected a list of strings, found an element {other}"),
                    )),
                })
                .collect(),
            serde_json::Value::String(s) => parse_list_literal(s)
                .ok_or_else(|| self.error(field, format!("expected a list literal, found {s:?}"))),
            other => Err(self.error(
                field,
                format!("expected a list, found {}", json_kind(other)),
            )),
        }
    }

    /// A list of numbers (or a string holding a list literal).
    pub fn f64_list(&self, field: &str) -> Result<Vec<f64>> {
        self.str_list(field)?
            .iter()
            .map(|s| {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| self.error(field, format!("expected numbers, found {s:?}")))
            })
            .collect()
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Parses a flat Python or JSON list literal of strings or numbers: `['a', "b"]`, `[3, 4.0]`.
/// Returns `None` when it is not one.
pub fn parse_list_literal(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        if c == '\'' || c == '"' {
            chars.next();
            let mut item = String::new();
            loop {
                match chars.next()? {
                    '\\' => item.push(chars.next()?),
                    q if q == c => break,
                    ch => item.push(ch),
                }
            }
            out.push(item);
        } else {
            let mut item = String::new();
            while let Some(&ch) = chars.peek() {
                if ch == ',' {
                    break;
                }
                item.push(ch);
                chars.next();
            }
            let item = item.trim().to_string();
            if item.is_empty() || item.parse::<f64>().is_err() {
                return None;
            }
            out.push(item);
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn list_literals() {
        assert_eq!(
            parse_list_literal("['B00', \"B01\"]"),
            Some(vec!["B00".to_string(), "B01".to_string()])
        );
        assert_eq!(
            parse_list_literal("[3, 4.0 ,5]"),
            Some(vec!["3".into(), "4.0".into(), "5".into()])
        );
        assert_eq!(parse_list_literal("[]"), Some(vec![]));
        assert_eq!(parse_list_literal("['it\\'s']"), Some(vec!["it's".into()]));
        assert_eq!(parse_list_literal("[abc]"), None);
        assert_eq!(parse_list_literal("3"), None);
        assert_eq!(parse_list_literal("['open"), None);
    }

    #[test]
    fn gzip_and_plain_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.jsonl");
        std::fs::write(&plain, "one\ntwo\r\n").unwrap();
        let gz = dir.path().join("a.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(b"one\ntwo\r\n").unwrap();
        enc.finish().unwrap();
        for p in [&plain, &gz] {
            let mut lines = Lines::open(p).unwrap();
            let mut got = vec![];
            while let Some((n, l)) = lines.next_line().unwrap() {
                got.push((n, l.to_string()));
            }
            assert_eq!(got, vec![(1, "one".to_string()), (2, "two".to_string())]);
        }
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = Lines::open(Path::new("/no/such/file.jsonl"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("/no/such/file.jsonl"), "{err}");
    }

    #[test]
    fn row_errors_name_line_and_field() {
        let p = Path::new("x.jsonl");
        let row = JsonRow::parse(p, 7, r#"{"label": "five", "n": null}"#).unwrap();
        let e = row.f64("label").unwrap_err().to_string();
        assert!(e.starts_with("x.jsonl:7: field `label`"), "{e}");
        let e = row.str("n").unwrap_err().to_string();
        assert!(e.contains("field `n`: missing"), "{e}");
        let e = JsonRow::parse(p, 3, "{oops").err().unwrap().to_string();
        assert!(e.starts_with("x.jsonl:3: invalid JSON"), "{e}");
    }
}
