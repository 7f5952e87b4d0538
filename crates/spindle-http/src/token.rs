//! The bearer token: 64 hex digits in `<data-dir>/token` (mode 0600), made at first start.

use crate::HttpError;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Number of hex digits of a token.
pub const TOKEN_LEN: usize = 64;

/// The administrator's bearer token. `Debug` never shows it, and nothing in this crate logs it.
#[derive(Clone)]
pub struct Token {
    secret: Box<str>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

fn is_token(s: &str) -> bool {
    s.len() == TOKEN_LEN && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Token {
    /// Reads `<data_dir>/token`, or makes it (random, mode 0600) when it does not exist.
    /// Refuses a token file that group or others may read or write, a file that is not a
    /// regular file (e.g. a symbolic link) and a file that does not hold 64 hex digits.
    pub fn load_or_create(data_dir: &Path) -> Result<Token, HttpError> {
        let path = data_dir.join("token");
        match Token::load(&path) {
            Err(HttpError::TokenIo { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            other => return other,
        }
        let io = |source| HttpError::TokenIo {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let mut raw = [0u8; TOKEN_LEN / 2];
        getrandom::fill(&mut raw).map_err(|e| HttpError::Random(e.to_string()))?;
        let mut hex = String::with_capacity(TOKEN_LEN);
        for b in raw {
            hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        // Written whole under a private name, then linked into place: the token file either
        // does not exist or holds a complete token, and a concurrent first start keeps the
        // token that won.
        let tmp = data_dir.join(format!(".token.{}.tmp", uuid::Uuid::new_v4().simple()));
        let written = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(hex.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::hard_link(&tmp, &path)
        })();
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => {
                if let Ok(dir) = std::fs::File::open(data_dir) {
                    let _ = dir.sync_all();
                }
                Ok(Token { secret: hex.into() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Token::load(&path),
            Err(source) => Err(HttpError::TokenIo {
                path: path.clone(),
                source,
            }),
        }
    }

    /// Reads an existing token file (same checks as [`Token::load_or_create`]).
    pub fn load(path: &Path) -> Result<Token, HttpError> {
        let io = |source| HttpError::TokenIo {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::symlink_metadata(path).map_err(io)?;
        if !meta.file_type().is_file() {
            return Err(HttpError::TokenNotAFile {
                path: path.to_path_buf(),
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(HttpError::TokenPermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let t = text.trim();
        if !is_token(t) {
            return Err(HttpError::TokenInvalid {
                path: path.to_path_buf(),
            });
        }
        Ok(Token { secret: t.into() })
    }

    /// A token from its 64 hex digits (e.g. for a client); `None` if it is not one.
    pub fn from_secret(secret: &str) -> Option<Token> {
        is_token(secret).then(|| Token {
            secret: secret.into(),
        })
    }

    /// The secret itself, to hand to a client. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.secret
    }

    /// Whether an `Authorization` header value is `Bearer <this token>`, compared in constant
    /// time (for a given header length).
    pub fn verify_header(&self, value: &[u8]) -> bool {
        const SCHEME: &[u8] = b"bearer ";
        if value.len() < SCHEME.len() || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
            return false;
        }
        let presented = value[SCHEME.len()..].trim_ascii();
        constant_time_eq(presented, self.secret.as_bytes())
    }

    /// Where the token of `data_dir` is kept.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("token")
    }
}

/// Equality whose running time depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    // Walk the expected value whatever was presented, so a short guess costs the same.
    for (i, &x) in b.iter().enumerate() {
        let y = a.get(i).copied().unwrap_or(!x);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_with_mode_0600_and_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Token::load_or_create(dir.path()).expect("create");
        assert!(is_token(t.expose_secret()));
        let meta = std::fs::metadata(dir.path().join("token")).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let again = Token::load_or_create(dir.path()).expect("load");
        assert_eq!(again.expose_secret(), t.expose_secret());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn refuses_a_file_others_may_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        Token::load_or_create(dir.path()).expect("create");
        let path = dir.path().join("token");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = Token::load_or_create(dir.path()).expect_err("must refuse");
        assert!(
            matches!(e, HttpError::TokenPermissions { mode: 0o644, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn refuses_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "not a token\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let e = Token::load_or_create(dir.path()).expect_err("must refuse");
        assert!(matches!(e, HttpError::TokenInvalid { .. }), "{e}");
        assert!(!e.to_string().contains("not a token"));
    }

    #[test]
    fn debug_hides_the_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = Token::load_or_create(dir.path()).expect("create");
        let shown = format!("{t:?} {t:#?}");
        assert!(!shown.contains(t.expose_secret()));
        assert!(!shown.contains(&t.expose_secret()[..8]));
    }

    #[test]
    fn verifies_bearer_header() {
        let secret = "ab".repeat(32);
        let t = Token::from_secret(&secret).expect("token");
        assert!(t.verify_header(format!("Bearer {secret}").as_bytes()));
        assert!(t.verify_header(format!("bearer {secret}").as_bytes()));
        assert!(!t.verify_header(secret.as_bytes()));
        assert!(!t.verify_header(format!("Basic {secret}").as_bytes()));
        assert!(!t.verify_header(format!("Bearer {}", "ab".repeat(31)).as_bytes()));
        assert!(!t.verify_header(format!("Bearer {secret}00").as_bytes()));
        assert!(!t.verify_header(format!("Bearer {}ac", "ab".repeat(31)).as_bytes()));
        assert!(!t.verify_header(b"Bearer "));
        assert!(!t.verify_header(b""));
    }
}
