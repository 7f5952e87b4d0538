//! tgtd's management socket, spoken directly — used to create CHAP accounts, so that a secret
//! never appears on a command line, and for every `--op show` (system, targets, portals,
//! accounts: the liveness checks and the reads of each reconciliation), which then costs one
//! round trip instead of starting a tgtadm process.
//!
//! tgtadm is a thin client: it packs a `struct tgtadm_req` (usr/tgtadm.h, unchanged since
//! 2012 up to tgt 1.0.97) followed by a NUL-terminated `key=value,...` string, sends it to the
//! Unix socket `$TGT_IPC_SOCKET.N` (default `/var/run/tgtd/socket.N`), and reads back a
//! `struct tgtadm_rsp { u32 err; u32 len; }` and `len - 8` bytes of text. tgtd only accepts
//! peers with its own uid and gid (SO_PEERCRED).
//!
//! Layout of `struct tgtadm_req` on LP64 Linux (native byte order):
//!
//! | offset | field | | offset | field |
//! |---|---|---|---|---|
//! | 0 | mode (enum, 4) | | 88 | lun (u64) |
//! | 4 | op (enum, 4) | | 96 | cid (u32) |
//! | 8 | lld (char\[64\]) | | 100 | host_no (u32) |
//! | 72 | len (u32) | | 104 | device_type (u32) |
//! | 76 | tid (i32) | | 108 | ac_dir (u32) |
//! | 80 | sid (u64) | | 112 | pack (u32), 116 force (u32) |
//!
//! 120 bytes in all.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::error::{AdmError, TgtError};

/// `enum tgtadm_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    System = 0,
    Target = 1,
    Portal = 3,
    Account = 7,
}

/// `enum tgtadm_op`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    New = 0,
    Show = 2,
}

const REQ_LEN: usize = 120;
const RSP_LEN: usize = 8;
/// tgtd's MAX_MGT_BUFSIZE.
const MAX_BODY: usize = 8 * 1024;

/// One request: header fields that matter here, and the parameter string.
pub(crate) struct Request<'a> {
    pub mode: Mode,
    pub op: Op,
    pub tid: i32,
    pub lun: u64,
    /// `key=value,...` without the trailing NUL; `None`: no parameters at all (the request is
    /// the bare header, as tgtadm sends `--op show --mode sys`).
    pub body: Option<&'a [u8]>,
    /// What to call the request in errors (never contains the body).
    pub label: &'a str,
}

fn header(req: &Request<'_>, total_len: u32) -> [u8; REQ_LEN] {
    let mut h = [0u8; REQ_LEN];
    h[0..4].copy_from_slice(&(req.mode as u32).to_ne_bytes());
    h[4..8].copy_from_slice(&(req.op as u32).to_ne_bytes());
    // tgtadm names no driver for system requests (tgtd then uses driver 0).
    if req.mode != Mode::System {
        let lld = b"iscsi";
        h[8..8 + lld.len()].copy_from_slice(lld);
    }
    h[72..76].copy_from_slice(&total_len.to_ne_bytes());
    h[76..80].copy_from_slice(&req.tid.to_ne_bytes());
    // sid (80..88), cid, host_no: 0
    h[88..96].copy_from_slice(&req.lun.to_ne_bytes());
    // device_type TYPE_DISK = 0, ac_dir incoming = 0, pack = 0, force = 0
    h
}

/// Sends `req` to the socket at `path` and returns tgtd's text answer.
pub(crate) fn request(
    path: &Path,
    control_port: u16,
    req: &Request<'_>,
    timeout: Duration,
) -> Result<String, TgtError> {
    let io_err = |source: std::io::Error| TgtError::Ipc {
        path: path.to_path_buf(),
        source,
    };
    let body_len = req.body.map_or(0, |b| b.len() + 1);
    if body_len > MAX_BODY {
        return Err(TgtError::Ipc {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} request is larger than tgtd accepts", req.label),
            ),
        });
    }
    let mut stream = match UnixStream::connect(path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(TgtError::NotRunning {
                control_port,
                detail: format!("cannot connect to {}: {e}", path.display()),
            })
        }
        Err(e) => return Err(io_err(e)),
    };
    stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_err)?;
    let total = u32::try_from(REQ_LEN + body_len).map_err(|_| {
        io_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "request too large",
        ))
    })?;
    let mut message = Vec::with_capacity(REQ_LEN + body_len);
    message.extend_from_slice(&header(req, total));
    if let Some(body) = req.body {
        message.extend_from_slice(body);
        message.push(0);
    }
    let sent = stream.write_all(&message);
    // The secret-bearing buffer is not needed any more, whatever happened.
    message.iter_mut().for_each(|b| *b = 0);
    std::hint::black_box(&message);
    drop(message);
    sent.map_err(io_err)?;

    let mut rsp = [0u8; RSP_LEN];
    stream.read_exact(&mut rsp).map_err(io_err)?;
    let err = u32::from_ne_bytes([rsp[0], rsp[1], rsp[2], rsp[3]]);
    let len = u32::from_ne_bytes([rsp[4], rsp[5], rsp[6], rsp[7]]) as usize;
    if err != 0 {
        return Err(TgtError::IpcRefused {
            request: req.label.to_string(),
            code: AdmError::from_code(err).unwrap_or(AdmError::Unknown),
        });
    }
    let mut text = Vec::new();
    if len > RSP_LEN {
        text.resize(len - RSP_LEN, 0);
        stream.read_exact(&mut text).map_err(io_err)?;
    }
    while text.last() == Some(&0) {
        text.pop();
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let req = Request {
            mode: Mode::Account,
            op: Op::New,
            tid: -1,
            lun: u64::MAX,
            body: Some(b"user=a,password=b"),
            label: "test",
        };
        let h = header(&req, 138);
        assert_eq!(&h[0..4], &7u32.to_ne_bytes());
        assert_eq!(&h[4..8], &0u32.to_ne_bytes());
        assert_eq!(&h[8..13], b"iscsi");
        assert_eq!(h[13], 0);
        assert_eq!(&h[72..76], &138u32.to_ne_bytes());
        assert_eq!(&h[76..80], &(-1i32).to_ne_bytes());
        assert_eq!(&h[88..96], &u64::MAX.to_ne_bytes());
        assert!(h[96..].iter().all(|b| *b == 0));
    }

    #[test]
    fn system_requests_name_no_driver() {
        let req = Request {
            mode: Mode::System,
            op: Op::Show,
            tid: 0,
            lun: 0,
            body: None,
            label: "test",
        };
        let h = header(&req, REQ_LEN as u32);
        assert_eq!(&h[0..4], &0u32.to_ne_bytes());
        assert_eq!(&h[4..8], &2u32.to_ne_bytes());
        assert!(h[8..72].iter().all(|b| *b == 0));
        assert_eq!(&h[72..76], &(REQ_LEN as u32).to_ne_bytes());
    }
}
