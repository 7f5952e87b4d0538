//! Behaviour tgt does not show by default, against a scripted target on loopback: responses
//! split with the Continue bit, target-initiated keys, target pings during a command, status
//! in a Data-In with an underflow, timeouts and refused connections.

use std::net::{TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use spindle_iscsi::pdu::{flags, Bhs, Opcode, Pdu, RESERVED_TAG};
use spindle_iscsi::text::TextPairs;
use spindle_iscsi::{Discovery, IscsiError, LoginOptions, Lun, Session};

const INIT: &str = "iqn.2024-01.org.spindle.test:fake-initiator";

/// Runs `script` against the first connection to a fresh loopback listener.
fn fake_target(script: impl FnOnce(&mut Peer) + Send + 'static) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut peer = Peer {
            stream,
            stat_sn: 100,
            exp_cmd_sn: 0,
        };
        script(&mut peer);
    });
    (addr, handle)
}

struct Peer {
    stream: TcpStream,
    stat_sn: u32,
    exp_cmd_sn: u32,
}

impl Peer {
    fn recv(&mut self) -> Pdu {
        let pdu = Pdu::read_from(&mut self.stream, 1 << 20).expect("a PDU from the initiator");
        let cmd_sn = pdu.bhs.u32_at(24);
        self.exp_cmd_sn = if pdu.bhs.immediate() {
            cmd_sn
        } else {
            cmd_sn.wrapping_add(1)
        };
        pdu
    }

    /// A response header with ITT, StatSN (advanced when `status`), ExpCmdSN and MaxCmdSN.
    fn header(&mut self, op: Opcode, itt: u32, status: bool) -> Bhs {
        let mut bhs = Bhs::new(op);
        bhs.set_itt(itt);
        bhs.set_u32_at(24, self.stat_sn);
        if status {
            self.stat_sn += 1;
        }
        bhs.set_u32_at(28, self.exp_cmd_sn);
        bhs.set_u32_at(32, self.exp_cmd_sn.wrapping_add(8));
        bhs
    }

    fn send(&mut self, bhs: Bhs, data: &[u8]) {
        Pdu::with_data(bhs, data.to_vec())
            .write_to(&mut self.stream)
            .expect("send to initiator");
    }

    fn login_response(&mut self, req: &Pdu, flags_byte: u8, tsih: u16, data: &[u8]) {
        let mut bhs = self.header(Opcode::LoginResponse, req.bhs.itt(), true);
        bhs.set_flags(flags_byte);
        bhs.0[8..14].copy_from_slice(&req.bhs.0[8..14]);
        bhs.set_u16_at(14, tsih);
        self.send(bhs, data);
    }

    /// Accepts a login without authentication in two plain round trips.
    fn plain_login(&mut self) {
        let req = self.recv();
        assert_eq!(req.opcode(), Some(Opcode::LoginRequest));
        self.login_response(&req, 0x80 | 0x01, 0, b"AuthMethod=None\0");
        let req = self.recv();
        assert_eq!((req.bhs.flags() >> 2) & 3, 1, "operational stage");
        self.login_response(&req, 0x80 | (1 << 2) | 0x03, 9, b"");
    }

    fn logout(&mut self) {
        let req = self.recv();
        assert_eq!(req.opcode(), Some(Opcode::LogoutRequest));
        let mut bhs = self.header(Opcode::LogoutResponse, req.bhs.itt(), true);
        bhs.set_flags(flags::FINAL);
        self.send(bhs, b"");
    }
}

#[test]
fn login_and_send_targets_follow_continue_bits_and_target_offers() {
    let (addr, handle) = fake_target(|t| {
        // Security stage: the response text is split across two PDUs with the C bit.
        let req = t.recv();
        let keys = TextPairs::parse(&req.data).expect("login keys");
        assert_eq!(keys.get("SessionType"), Some("Discovery"));
        assert_eq!(keys.get("InitiatorName"), Some(INIT));
        assert_eq!(keys.get("AuthMethod"), Some("None"));
        assert_eq!(req.bhs.flags(), 0x80 | 0x01, "T=1, CSG=0, NSG=1");
        t.login_response(&req, flags::CONTINUE, 0, b"AuthMethod=No");
        let more = t.recv();
        assert!(
            more.data.is_empty(),
            "the initiator asks for the rest with an empty request"
        );
        t.login_response(&more, 0x80 | 0x01, 0, b"ne\0TargetPortalGroupTag=7\0");

        // Operational stage: the target offers keys of its own and stays in the stage.
        let req = t.recv();
        let keys = TextPairs::parse(&req.data).expect("operational keys");
        assert_eq!(keys.get("HeaderDigest"), Some("None"));
        assert_eq!(keys.get("MaxRecvDataSegmentLength"), Some("262144"));
        t.login_response(
            &req,
            1 << 2,
            0,
            b"HeaderDigest=None\0MaxRecvDataSegmentLength=4096\0X-org.example.Frob=1\0",
        );
        let req = t.recv();
        let keys = TextPairs::parse(&req.data).expect("answers");
        assert_eq!(keys.get("X-org.example.Frob"), Some("NotUnderstood"));
        assert_eq!(
            keys.get("MaxRecvDataSegmentLength"),
            None,
            "declarative: no answer"
        );
        t.login_response(&req, 0x80 | (1 << 2) | 0x03, 5, b"");

        // SendTargets: the answer spans two Text Responses.
        let req = t.recv();
        assert_eq!(req.opcode(), Some(Opcode::TextRequest));
        assert_eq!(req.data, b"SendTargets=All\0");
        let mut bhs = t.header(Opcode::TextResponse, req.bhs.itt(), true);
        bhs.set_flags(flags::CONTINUE);
        bhs.set_u32_at(20, 0x1234);
        t.send(bhs, b"TargetName=iqn.2024-01.example:a\0TargetAddr");
        let req = t.recv();
        assert_eq!(
            req.bhs.u32_at(20),
            0x1234,
            "continuation carries the target's tag"
        );
        assert!(req.data.is_empty());
        let mut bhs = t.header(Opcode::TextResponse, req.bhs.itt(), true);
        bhs.set_flags(flags::FINAL);
        bhs.set_u32_at(20, RESERVED_TAG);
        t.send(
            bhs,
            b"ess=192.0.2.1:3260,1\0TargetName=iqn.2024-01.example:b\0TargetAddress=[2001:db8::1]:3261,2\0",
        );
        t.logout();
    });
    let targets = Discovery::send_targets(&addr, INIT, None).expect("discovery");
    handle.join().expect("fake target script");
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0].name, "iqn.2024-01.example:a");
    assert_eq!(targets[0].portals[0].address, "192.0.2.1:3260");
    assert_eq!(targets[1].portals[0].address, "[2001:db8::1]:3261");
    assert_eq!(targets[1].portals[0].portal_group_tag, Some(2));
}

#[test]
fn target_ping_mid_command_and_status_in_data_in_with_underflow() {
    let (addr, handle) = fake_target(|t| {
        t.plain_login();
        let cmd = t.recv();
        assert_eq!(cmd.opcode(), Some(Opcode::ScsiCommand));
        assert_eq!(cmd.bhs.0[32], 0x12, "INQUIRY");
        assert_eq!(cmd.bhs.u32_at(20), 96, "expected data transfer length");
        assert_eq!(
            cmd.bhs.flags() & (flags::FINAL | flags::READ),
            flags::FINAL | flags::READ
        );

        // The target pings in the middle of the command.
        let mut ping = t.header(Opcode::NopIn, RESERVED_TAG, false);
        ping.set_flags(flags::FINAL);
        ping.set_u32_at(20, 0x77);
        t.send(ping, b"ping");
        let pong = t.recv();
        assert_eq!(pong.opcode(), Some(Opcode::NopOut));
        assert_eq!(pong.bhs.itt(), RESERVED_TAG);
        assert_eq!(pong.bhs.u32_at(20), 0x77);
        assert_eq!(pong.data, b"ping");

        // 36 bytes in two Data-In PDUs, status and a 60-byte underflow in the last.
        let mut inquiry = [0u8; 36];
        inquiry[8..16].copy_from_slice(b"FAKE    ");
        inquiry[16..32].copy_from_slice(b"TARGET          ");
        inquiry[32..36].copy_from_slice(b"0001");
        let mut first = t.header(Opcode::DataIn, cmd.bhs.itt(), false);
        first.set_u32_at(20, RESERVED_TAG);
        first.set_u32_at(36, 0);
        first.set_u32_at(40, 0);
        t.send(first, &inquiry[..20]);
        let mut last = t.header(Opcode::DataIn, cmd.bhs.itt(), true);
        last.set_flags(flags::FINAL | flags::STATUS | flags::UNDERFLOW);
        last.set_u32_at(20, RESERVED_TAG);
        last.set_u32_at(36, 1);
        last.set_u32_at(40, 20);
        last.set_u32_at(44, 60);
        t.send(last, &inquiry[20..]);
        t.logout();
    });
    let mut s = Session::login(&addr, "iqn.2024-01.example:a", INIT, None).expect("login");
    assert_eq!(s.params().tsih, 9);
    let inq = s.inquiry(Lun::new(0)).expect("INQUIRY");
    assert_eq!((inq.vendor.as_str(), inq.product.as_str()), ("FAKE", "TARGET"));
    assert_eq!(inq.raw.len(), 36);
    assert_eq!(s.stats().data_in_pdus, 2);
    assert_eq!(s.stats().data_in_with_status, 1);
    s.logout().expect("logout");
    handle.join().expect("fake target script");
}

#[test]
fn a_silent_target_times_out() {
    let (addr, handle) = fake_target(|t| {
        let _ = t.recv();
        // Say nothing until the initiator gives up and closes.
        let _ = Pdu::read_from(&mut t.stream, 1 << 20);
    });
    let opts = LoginOptions::new(INIT).with_timeouts(Duration::from_secs(2), Duration::from_millis(300));
    let started = Instant::now();
    let e = Session::login_with(&addr, "iqn.2024-01.example:a", &opts).expect_err("no answer");
    assert!(e.is_timeout(), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    handle.join().expect("fake target script");
}

#[test]
fn a_refused_connection_names_the_portal() {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let e = Discovery::send_targets(&addr, INIT, None).expect_err("nothing listens");
    assert!(matches!(e, IscsiError::Connect { .. }), "{e}");
    assert!(e.to_string().contains(&addr), "{e}");
    // Arguments are checked before any connection is attempted.
    let e = Session::login("127.0.0.1:1", "iqn.2024-01.example:a", "not an iqn", None).expect_err("bad name");
    assert!(matches!(e, IscsiError::InvalidArgument(_)), "{e}");
    let e = Session::login("127.0.0.1:1", "target", INIT, None).expect_err("bad target name");
    assert!(matches!(e, IscsiError::InvalidArgument(_)), "{e}");
}
