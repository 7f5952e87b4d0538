//! The login phase (RFC 7143 §6.3): security negotiation (none or CHAP), operational parameter
//! negotiation, and the move to full feature phase.

use std::time::Duration;

use crate::chap::{self, Chap};
use crate::connection::Connection;
use crate::error::{reject_reason_text, IscsiError, LoginStatus};
use crate::pdu::{flags, Bhs, Opcode, Pdu, MAX_DATA_SEGMENT};
use crate::text::{self, format_bool, parse_bool, parse_number, TextPairs};

/// Login stage: security negotiation.
const SECURITY: u8 = 0;
/// Login stage: operational negotiation.
const OPERATIONAL: u8 = 1;
/// Login stage: full feature phase.
const FULL_FEATURE: u8 = 3;

/// How many round trips one stage may take before the login is abandoned.
const MAX_ROUNDS: usize = 16;

/// What to ask for at login, and how the session behaves afterwards.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    /// The initiator's iSCSI name (`iqn.…`, `eui.…` or `naa.…`).
    pub initiator_name: String,
    /// Sent as InitiatorAlias when set.
    pub initiator_alias: Option<String>,
    /// CHAP credentials; without them the login offers `AuthMethod=None`. With them it offers
    /// only `CHAP`, so a target cannot silently skip authentication.
    pub chap: Option<Chap>,
    /// The ISID; a random one (type "random", RFC 7143 §11.12.5) when not set.
    pub isid: Option<[u8; 6]>,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Read and write timeout on the socket (how long any one wait for the target may take).
    pub io_timeout: Duration,
    /// MaxRecvDataSegmentLength declared to the target (512 ..= 16777215).
    pub max_recv_data_segment_length: u32,
    /// MaxBurstLength offered (512 ..= 16777215).
    pub max_burst_length: u32,
    /// FirstBurstLength offered (512 ..= 16777215, at most MaxBurstLength).
    pub first_burst_length: u32,
    /// ImmediateData offered.
    pub immediate_data: bool,
    /// InitialR2T offered (`false` asks for unsolicited Data-Out).
    pub initial_r2t: bool,
    /// Largest transfer, in bytes, of one READ(16)/WRITE(16) issued by `Session::read` and
    /// `Session::write`; larger requests are split.
    pub max_transfer_bytes: usize,
    /// How many times a command that ends in UNIT ATTENTION is re-issued.
    pub unit_attention_retries: u32,
}

impl LoginOptions {
    /// Defaults for `initiator_name`: no CHAP, 10 s connect / 30 s I/O timeouts,
    /// MaxRecvDataSegmentLength 256 KiB, MaxBurstLength 16 MiB - 1 KiB, FirstBurstLength
    /// 256 KiB, ImmediateData=Yes, InitialR2T=No (the target's answer decides), 4 MiB
    /// transfers, 8 UNIT ATTENTION retries.
    pub fn new(initiator_name: impl Into<String>) -> LoginOptions {
        LoginOptions {
            initiator_name: initiator_name.into(),
            initiator_alias: None,
            chap: None,
            isid: None,
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
            max_recv_data_segment_length: 256 * 1024,
            max_burst_length: 16 * 1024 * 1024 - 1024,
            first_burst_length: 256 * 1024,
            immediate_data: true,
            initial_r2t: false,
            max_transfer_bytes: 4 * 1024 * 1024,
            unit_attention_retries: 8,
        }
    }

    /// Uses CHAP credentials.
    pub fn with_chap(mut self, chap: Chap) -> LoginOptions {
        self.chap = Some(chap);
        self
    }

    /// Sets the connect and I/O timeouts.
    pub fn with_timeouts(mut self, connect: Duration, io: Duration) -> LoginOptions {
        self.connect_timeout = connect;
        self.io_timeout = io;
        self
    }

    /// Checks the options before anything is sent.
    pub(crate) fn validate(&self) -> Result<(), IscsiError> {
        text::validate_iscsi_name(&self.initiator_name)?;
        let check = |name: &str, v: u32| {
            if (512..=MAX_DATA_SEGMENT as u32).contains(&v) {
                Ok(())
            } else {
                Err(IscsiError::InvalidArgument(format!(
                    "{name} must be within 512..=16777215, got {v}"
                )))
            }
        };
        check("MaxRecvDataSegmentLength", self.max_recv_data_segment_length)?;
        check("MaxBurstLength", self.max_burst_length)?;
        check("FirstBurstLength", self.first_burst_length)?;
        if self.first_burst_length > self.max_burst_length {
            return Err(IscsiError::InvalidArgument(
                "FirstBurstLength must not exceed MaxBurstLength".to_string(),
            ));
        }
        if self.max_transfer_bytes == 0 {
            return Err(IscsiError::InvalidArgument(
                "max_transfer_bytes must be positive".to_string(),
            ));
        }
        if self.connect_timeout.is_zero() || self.io_timeout.is_zero() {
            return Err(IscsiError::InvalidArgument(
                "timeouts must be positive".to_string(),
            ));
        }
        if let Some(chap) = &self.chap {
            if chap.username().is_empty() {
                return Err(IscsiError::InvalidArgument(
                    "the CHAP user name is empty".to_string(),
                ));
            }
        }
        Ok(())
    }
}

/// The outcome of login: what the session runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedParams {
    /// The target logged into (`None` for a discovery session).
    pub target_name: Option<String>,
    /// TargetAlias, when the target sent one.
    pub target_alias: Option<String>,
    /// TargetPortalGroupTag, when the target sent one.
    pub target_portal_group_tag: Option<u16>,
    /// The session's ISID.
    pub isid: [u8; 6],
    /// The TSIH the target assigned.
    pub tsih: u16,
    /// Whether CHAP authenticated the initiator.
    pub chap: bool,
    /// Whether the target also proved itself (mutual CHAP).
    pub mutual_chap: bool,
    /// The largest data segment the target may send us (our MaxRecvDataSegmentLength).
    pub max_recv_data_segment_length: u32,
    /// The largest data segment we may send (the target's MaxRecvDataSegmentLength; 8192 when
    /// it did not declare one).
    pub max_xmit_data_segment_length: u32,
    /// MaxBurstLength.
    pub max_burst_length: u32,
    /// FirstBurstLength.
    pub first_burst_length: u32,
    /// ImmediateData.
    pub immediate_data: bool,
    /// InitialR2T.
    pub initial_r2t: bool,
    /// MaxOutstandingR2T.
    pub max_outstanding_r2t: u32,
    /// ErrorRecoveryLevel (always 0 here).
    pub error_recovery_level: u32,
    /// DataPDUInOrder.
    pub data_pdu_in_order: bool,
    /// DataSequenceInOrder.
    pub data_sequence_in_order: bool,
    /// DefaultTime2Wait.
    pub default_time2wait: u32,
    /// DefaultTime2Retain.
    pub default_time2retain: u32,
    /// MaxConnections.
    pub max_connections: u32,
}

impl NegotiatedParams {
    /// RFC 7143 defaults, before negotiation.
    fn defaults(target_name: Option<String>, isid: [u8; 6], our_mrdsl: u32) -> NegotiatedParams {
        NegotiatedParams {
            target_name,
            target_alias: None,
            target_portal_group_tag: None,
            isid,
            tsih: 0,
            chap: false,
            mutual_chap: false,
            max_recv_data_segment_length: our_mrdsl,
            max_xmit_data_segment_length: 8192,
            max_burst_length: 262_144,
            first_burst_length: 65_536,
            immediate_data: true,
            initial_r2t: true,
            max_outstanding_r2t: 1,
            error_recovery_level: 0,
            data_pdu_in_order: true,
            data_sequence_in_order: true,
            default_time2wait: 2,
            default_time2retain: 20,
            max_connections: 1,
        }
    }
}

/// One Login Response, reassembled across Continue PDUs.
struct Reply {
    transit: bool,
    nsg: u8,
    keys: TextPairs,
}

struct Login<'a> {
    conn: &'a mut Connection,
    itt: u32,
    isid: [u8; 6],
    tsih: u16,
    label: String,
}

impl Login<'_> {
    fn negotiation_error(&self, reason: impl Into<String>) -> IscsiError {
        IscsiError::Negotiation {
            target: self.label.clone(),
            reason: reason.into(),
        }
    }

    fn request(&self, csg: u8, nsg: u8, transit: bool, data: Vec<u8>) -> Pdu {
        let mut bhs = Bhs::new(Opcode::LoginRequest);
        bhs.set_immediate(true);
        let mut f = csg << 2;
        if transit {
            f |= flags::LOGIN_TRANSIT | nsg;
        }
        bhs.set_flags(f);
        bhs.0[2] = 0; // Version-max
        bhs.0[3] = 0; // Version-min
        bhs.0[8..14].copy_from_slice(&self.isid);
        bhs.set_u16_at(14, self.tsih);
        bhs.set_itt(self.itt);
        bhs.set_u16_at(20, 0); // CID
        bhs.set_u32_at(24, self.conn.cmd_sn);
        bhs.set_u32_at(28, self.conn.exp_stat_sn);
        Pdu::with_data(bhs, data)
    }

    /// Sends one Login Request and returns the (whole) Login Response.
    fn exchange(&mut self, csg: u8, nsg: u8, transit: bool, keys: &TextPairs) -> Result<Reply, IscsiError> {
        let data = keys.encode()?;
        if data.len() > crate::connection::LOGIN_MAX_RECV {
            return Err(IscsiError::InvalidArgument(format!(
                "login keys of {} bytes do not fit one login PDU",
                data.len()
            )));
        }
        let pdu = self.request(csg, nsg, transit, data);
        self.conn.send(&pdu)?;
        let mut text = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let rsp = self.conn.recv()?;
            match rsp.opcode() {
                Some(Opcode::LoginResponse) => {}
                Some(Opcode::Reject) => {
                    let reason = rsp.bhs.0[2];
                    return Err(IscsiError::Rejected {
                        reason,
                        reason_text: reject_reason_text(reason),
                    });
                }
                _ => {
                    return Err(IscsiError::Protocol(format!(
                        "expected a Login Response, got opcode {:#04x}",
                        rsp.bhs.opcode_raw()
                    )))
                }
            }
            if rsp.bhs.itt() != self.itt {
                return Err(IscsiError::Protocol(format!(
                    "Login Response for task tag {:#010x}, expected {:#010x}",
                    rsp.bhs.itt(),
                    self.itt
                )));
            }
            let class = rsp.bhs.0[36];
            let detail = rsp.bhs.0[37];
            text.extend_from_slice(&rsp.data);
            if class != 0 {
                let keys = TextPairs::parse(&text).unwrap_or_default();
                return Err(IscsiError::LoginRefused {
                    target: self.label.clone(),
                    status: LoginStatus::from_class_detail(class, detail),
                    class,
                    detail,
                    redirect_to: keys.get("TargetAddress").map(str::to_string),
                });
            }
            if rsp.bhs.0[3] != 0 {
                return Err(self.negotiation_error(format!(
                    "the target only speaks iSCSI version {:#04x}",
                    rsp.bhs.0[3]
                )));
            }
            // The first response starts the command window; later ones move it on.
            self.conn.reset_window(rsp.bhs.u32_at(28), rsp.bhs.u32_at(32));
            let f = rsp.bhs.flags();
            let rsp_csg = (f >> 2) & 0x03;
            if rsp_csg != csg {
                return Err(IscsiError::Protocol(format!(
                    "Login Response for stage {rsp_csg}, the request was for stage {csg}"
                )));
            }
            if f & flags::CONTINUE != 0 {
                // More text follows: ask for it with an empty request in the same stage.
                let more = self.request(csg, nsg, false, Vec::new());
                self.conn.send(&more)?;
                continue;
            }
            let transit_set = f & flags::LOGIN_TRANSIT != 0;
            let rsp_nsg = f & 0x03;
            if transit_set {
                if !transit || rsp_nsg > nsg {
                    return Err(IscsiError::Protocol(format!(
                        "the target moved to stage {rsp_nsg} without being asked"
                    )));
                }
                if rsp_nsg == FULL_FEATURE {
                    self.tsih = rsp.bhs.u16_at(14);
                }
            }
            return Ok(Reply {
                transit: transit_set,
                nsg: rsp_nsg,
                keys: TextPairs::parse(&text)?,
            });
        }
        Err(self.negotiation_error("the target kept continuing its login response"))
    }
}

/// Informational keys a target may send at any stage.
fn absorb_info(keys: &TextPairs, neg: &mut NegotiatedParams) {
    if let Some(alias) = keys.get("TargetAlias") {
        neg.target_alias = Some(alias.to_string());
    }
    if let Some(tag) = keys.get("TargetPortalGroupTag").and_then(parse_number) {
        neg.target_portal_group_tag = u16::try_from(tag).ok();
    }
}

fn random_bytes(buf: &mut [u8]) -> Result<(), IscsiError> {
    getrandom::fill(buf).map_err(|e| IscsiError::Random(e.to_string()))
}

/// A random ISID of type "random" (T=10b; B and C random; qualifier D zero).
pub(crate) fn random_isid() -> Result<[u8; 6], IscsiError> {
    let mut isid = [0u8; 6];
    random_bytes(&mut isid[1..4])?;
    isid[0] = 0x80;
    Ok(isid)
}

/// Runs the login phase on a fresh connection. `target` is `None` for a discovery session.
pub(crate) fn login(
    conn: &mut Connection,
    opts: &LoginOptions,
    target: Option<&str>,
) -> Result<NegotiatedParams, IscsiError> {
    opts.validate()?;
    if let Some(t) = target {
        text::validate_iscsi_name(t)?;
    }
    let isid = match opts.isid {
        Some(isid) => isid,
        None => random_isid()?,
    };
    let itt = conn.alloc_itt();
    let label = target.unwrap_or("discovery session").to_string();
    let mut neg = NegotiatedParams::defaults(
        target.map(str::to_string),
        isid,
        opts.max_recv_data_segment_length,
    );
    let mut login = Login {
        conn,
        itt,
        isid,
        tsih: 0,
        label,
    };

    security_stage(&mut login, opts, target, &mut neg)?;
    operational_stage(&mut login, opts, target.is_none(), &mut neg)?;

    neg.tsih = login.tsih;
    if neg.first_burst_length > neg.max_burst_length {
        neg.first_burst_length = neg.max_burst_length;
    }
    login.conn.max_recv = opts.max_recv_data_segment_length as usize;
    Ok(neg)
}

fn security_stage(
    login: &mut Login<'_>,
    opts: &LoginOptions,
    target: Option<&str>,
    neg: &mut NegotiatedParams,
) -> Result<(), IscsiError> {
    let mut keys = TextPairs::new();
    keys.push("InitiatorName", opts.initiator_name.as_str());
    if let Some(alias) = &opts.initiator_alias {
        keys.push("InitiatorAlias", alias.as_str());
    }
    match target {
        Some(t) => {
            keys.push("SessionType", "Normal");
            keys.push("TargetName", t);
        }
        None => keys.push("SessionType", "Discovery"),
    }
    let mut reply = match &opts.chap {
        None => {
            keys.push("AuthMethod", "None");
            let reply = login.exchange(SECURITY, OPERATIONAL, true, &keys)?;
            if let Some(m) = reply.keys.get("AuthMethod") {
                if m != "None" {
                    return Err(login.negotiation_error(format!(
                        "the target answered AuthMethod={} to AuthMethod=None",
                        text::excerpt(m)
                    )));
                }
            }
            absorb_info(&reply.keys, neg);
            reply
        }
        Some(chap) => {
            keys.push("AuthMethod", "CHAP");
            let reply = login.exchange(SECURITY, OPERATIONAL, false, &keys)?;
            absorb_info(&reply.keys, neg);
            match reply.keys.get("AuthMethod") {
                Some("CHAP") => {}
                other => {
                    return Err(login.negotiation_error(format!(
                        "the target did not accept AuthMethod=CHAP (answered {})",
                        other.map(text::excerpt).unwrap_or_else(|| "nothing".into())
                    )))
                }
            }
            chap_exchange(login, chap, neg)?
        }
    };
    let mut rounds = 0;
    while !reply.transit {
        rounds += 1;
        if rounds > MAX_ROUNDS {
            return Err(login.negotiation_error("the target never ended security negotiation"));
        }
        reply = login.exchange(SECURITY, OPERATIONAL, true, &TextPairs::new())?;
        absorb_info(&reply.keys, neg);
    }
    if reply.nsg != OPERATIONAL {
        return Err(IscsiError::Protocol(format!(
            "the target moved from security negotiation to stage {}",
            reply.nsg
        )));
    }
    Ok(())
}

fn chap_exchange(
    login: &mut Login<'_>,
    chap: &Chap,
    neg: &mut NegotiatedParams,
) -> Result<Reply, IscsiError> {
    let mut keys = TextPairs::new();
    keys.push("CHAP_A", chap::CHAP_MD5);
    let reply = login.exchange(SECURITY, OPERATIONAL, false, &keys)?;
    absorb_info(&reply.keys, neg);
    if reply.keys.get("CHAP_A") != Some(chap::CHAP_MD5) {
        return Err(login.negotiation_error(format!(
            "the target did not accept CHAP_A=5 (MD5); it answered {}",
            reply
                .keys
                .get("CHAP_A")
                .map(text::excerpt)
                .unwrap_or_else(|| "nothing".into())
        )));
    }
    let id = reply
        .keys
        .get("CHAP_I")
        .and_then(parse_number)
        .and_then(|v| u8::try_from(v).ok())
        .ok_or_else(|| login.negotiation_error("the target sent no valid CHAP_I"))?;
    let challenge = reply
        .keys
        .get("CHAP_C")
        .and_then(chap::decode_binary)
        .filter(|c| !c.is_empty() && c.len() <= chap::MAX_CHALLENGE_LEN)
        .ok_or_else(|| login.negotiation_error("the target sent no valid CHAP_C"))?;
    let response = chap::md5_response(id, chap.secret().expose(), &challenge);

    let mut keys = TextPairs::new();
    keys.push("CHAP_N", chap.username());
    keys.push("CHAP_R", chap::encode_hex(&response));
    let mut ours = None;
    if let Some(_target_creds) = chap.mutual() {
        let mut our_id = [0u8; 1];
        let mut our_challenge = [0u8; chap::CHALLENGE_LEN];
        loop {
            random_bytes(&mut our_id)?;
            random_bytes(&mut our_challenge)?;
            // Never hand the target its own challenge back (RFC 7143 §12.1.3: reflection).
            if our_challenge[..] != challenge[..] {
                break;
            }
        }
        keys.push("CHAP_I", our_id[0].to_string());
        keys.push("CHAP_C", chap::encode_hex(&our_challenge));
        ours = Some((our_id[0], our_challenge));
    }
    let reply = login.exchange(SECURITY, OPERATIONAL, true, &keys)?;
    absorb_info(&reply.keys, neg);
    neg.chap = true;

    if let (Some(creds), Some((our_id, our_challenge))) = (chap.mutual(), ours) {
        let fail = |reason: &str| IscsiError::MutualChapFailed {
            target: login.label.clone(),
            reason: reason.to_string(),
        };
        let name = reply
            .keys
            .get("CHAP_N")
            .ok_or_else(|| fail("the target sent no CHAP_N"))?;
        if name != creds.username {
            return Err(fail("the target answered with a different CHAP name"));
        }
        let their = reply
            .keys
            .get("CHAP_R")
            .and_then(chap::decode_binary)
            .ok_or_else(|| fail("the target sent no valid CHAP_R"))?;
        let expected = chap::md5_response(our_id, creds.secret.expose(), &our_challenge);
        if !chap::constant_time_eq(&their, &expected) {
            return Err(fail(
                "the target's CHAP response does not match the configured target secret",
            ));
        }
        neg.mutual_chap = true;
    }
    Ok(reply)
}

/// Our offers for the operational stage.
fn offers(opts: &LoginOptions, discovery: bool) -> TextPairs {
    let mut k = TextPairs::new();
    k.push("HeaderDigest", "None");
    k.push("DataDigest", "None");
    k.push(
        "MaxRecvDataSegmentLength",
        opts.max_recv_data_segment_length.to_string(),
    );
    if !discovery {
        k.push("InitialR2T", format_bool(opts.initial_r2t));
        k.push("ImmediateData", format_bool(opts.immediate_data));
        k.push("MaxBurstLength", opts.max_burst_length.to_string());
        k.push("FirstBurstLength", opts.first_burst_length.to_string());
        k.push("MaxOutstandingR2T", "1");
        k.push("MaxConnections", "1");
        k.push("DataPDUInOrder", "Yes");
        k.push("DataSequenceInOrder", "Yes");
        k.push("ErrorRecoveryLevel", "0");
        k.push("DefaultTime2Wait", "0");
        k.push("DefaultTime2Retain", "0");
    }
    k
}

/// True for the values that say "no answer to this key" (RFC 7143 §6.2).
fn is_non_answer(value: &str) -> bool {
    matches!(value, "Reject" | "NotUnderstood" | "Irrelevant")
}

fn operational_stage(
    login: &mut Login<'_>,
    opts: &LoginOptions,
    discovery: bool,
    neg: &mut NegotiatedParams,
) -> Result<(), IscsiError> {
    let offered = offers(opts, discovery);
    if !discovery {
        neg.immediate_data = opts.immediate_data;
        neg.initial_r2t = opts.initial_r2t;
    }
    let mut sending = offered.clone();
    for _ in 0..MAX_ROUNDS {
        let reply = login.exchange(OPERATIONAL, FULL_FEATURE, true, &sending)?;
        absorb_info(&reply.keys, neg);
        let answers = absorb_operational(login, opts, &offered, &reply.keys, neg)?;
        if reply.transit && reply.nsg == FULL_FEATURE {
            return Ok(());
        }
        sending = answers;
    }
    Err(login.negotiation_error("the target never ended operational negotiation"))
}

/// Applies the target's operational keys; returns the answers owed to keys the target
/// offered on its own.
fn absorb_operational(
    login: &Login<'_>,
    opts: &LoginOptions,
    offered: &TextPairs,
    keys: &TextPairs,
    neg: &mut NegotiatedParams,
) -> Result<TextPairs, IscsiError> {
    let mut answers = TextPairs::new();
    for (key, value) in keys.iter() {
        let ours = offered.get(key);
        let is_answer = ours.is_some();
        let bad = |what: &str| {
            login.negotiation_error(format!("unacceptable {key}={}: {what}", text::excerpt(value)))
        };
        let number = || parse_number(value).ok_or_else(|| bad("not a number"));
        let boolean = || parse_bool(value).ok_or_else(|| bad("not Yes or No"));
        match key {
            "TargetAlias" | "TargetPortalGroupTag" | "TargetAddress" => {}
            "HeaderDigest" | "DataDigest" => {
                if is_answer {
                    if value != "None" && !is_non_answer(value) {
                        return Err(bad("only None is supported"));
                    }
                } else if value.split(',').any(|v| v == "None") {
                    answers.push(key, "None");
                } else {
                    return Err(bad("only None is supported"));
                }
            }
            "MaxRecvDataSegmentLength" => {
                // Declarative: the target's own receive limit.
                if is_non_answer(value) {
                    continue;
                }
                let v = number()?;
                if !(512..=MAX_DATA_SEGMENT as u64).contains(&v) {
                    return Err(bad("outside 512..=16777215"));
                }
                neg.max_xmit_data_segment_length = v as u32;
            }
            "MaxBurstLength" | "FirstBurstLength" | "MaxOutstandingR2T" | "MaxConnections"
            | "DefaultTime2Retain" | "ErrorRecoveryLevel" => {
                let mine: u64 = match key {
                    "MaxBurstLength" => u64::from(opts.max_burst_length),
                    "FirstBurstLength" => u64::from(opts.first_burst_length),
                    "DefaultTime2Retain" | "ErrorRecoveryLevel" => 0,
                    _ => 1,
                };
                let result = if is_answer && is_non_answer(value) {
                    // Keep the protocol default, but never more than we offered.
                    let default = match key {
                        "MaxBurstLength" => 262_144,
                        "FirstBurstLength" => 65_536,
                        "DefaultTime2Retain" => 20,
                        "ErrorRecoveryLevel" => 0,
                        _ => 1,
                    };
                    mine.min(default)
                } else {
                    let v = number()?;
                    if is_answer && v > mine {
                        return Err(bad("more than offered"));
                    }
                    let chosen = v.min(mine);
                    if !is_answer {
                        answers.push(key, chosen.to_string());
                    }
                    chosen
                };
                let lower = match key {
                    "MaxBurstLength" | "FirstBurstLength" => 512,
                    "MaxOutstandingR2T" | "MaxConnections" => 1,
                    _ => 0,
                };
                if result < lower {
                    return Err(bad("below the protocol minimum"));
                }
                let result = u32::try_from(result).map_err(|_| bad("too large"))?;
                match key {
                    "MaxBurstLength" => neg.max_burst_length = result,
                    "FirstBurstLength" => neg.first_burst_length = result,
                    "MaxOutstandingR2T" => neg.max_outstanding_r2t = result,
                    "MaxConnections" => neg.max_connections = result,
                    "DefaultTime2Retain" => neg.default_time2retain = result,
                    _ => neg.error_recovery_level = result,
                }
            }
            "DefaultTime2Wait" if !is_non_answer(value) => {
                let v = number()?;
                if !is_answer {
                    answers.push(key, v.to_string());
                }
                neg.default_time2wait = u32::try_from(v).map_err(|_| bad("too large"))?;
            }
            "ImmediateData" => {
                // AND: Yes only if both say Yes.
                let result = if is_non_answer(value) {
                    false
                } else {
                    let v = boolean()?;
                    if is_answer && v && !opts.immediate_data {
                        return Err(bad("Yes although No was offered"));
                    }
                    v && opts.immediate_data
                };
                if !is_answer {
                    answers.push(key, format_bool(result));
                }
                neg.immediate_data = result;
            }
            "InitialR2T" => {
                // OR: No only if both say No.
                let result = if is_non_answer(value) {
                    true
                } else {
                    let v = boolean()?;
                    if is_answer && !v && opts.initial_r2t {
                        return Err(bad("No although Yes was offered"));
                    }
                    v || opts.initial_r2t
                };
                if !is_answer {
                    answers.push(key, format_bool(result));
                }
                neg.initial_r2t = result;
            }
            "DataPDUInOrder" | "DataSequenceInOrder" => {
                if !is_non_answer(value) && !boolean()? && is_answer {
                    return Err(bad("Yes was offered; the result of an OR cannot be No"));
                }
                if !is_answer {
                    answers.push(key, "Yes");
                }
            }
            "IFMarker" | "OFMarker" if !is_answer => {
                answers.push(key, "No");
            }
            _ if !is_answer => {
                answers.push(key, "NotUnderstood");
            }
            _ => {}
        }
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_cover_the_operational_keys() {
        let opts = LoginOptions::new("iqn.2024-01.test:init");
        let normal = offers(&opts, false);
        for key in [
            "HeaderDigest",
            "DataDigest",
            "MaxRecvDataSegmentLength",
            "MaxBurstLength",
            "FirstBurstLength",
            "ImmediateData",
            "InitialR2T",
            "MaxOutstandingR2T",
            "ErrorRecoveryLevel",
        ] {
            assert!(normal.get(key).is_some(), "{key}");
        }
        assert_eq!(normal.get("MaxOutstandingR2T"), Some("1"));
        let discovery = offers(&opts, true);
        assert!(discovery.get("MaxBurstLength").is_none());
        assert_eq!(discovery.get("HeaderDigest"), Some("None"));
    }

    #[test]
    fn options_are_validated() {
        assert!(LoginOptions::new("iqn.2024-01.test:init").validate().is_ok());
        assert!(LoginOptions::new("not-an-iqn").validate().is_err());
        let mut o = LoginOptions::new("iqn.2024-01.test:init");
        o.first_burst_length = o.max_burst_length + 1;
        assert!(o.validate().is_err());
        let mut o = LoginOptions::new("iqn.2024-01.test:init");
        o.max_recv_data_segment_length = 100;
        assert!(o.validate().is_err());
    }

    #[test]
    fn random_isid_has_random_type() {
        let a = random_isid().expect("random");
        let b = random_isid().expect("random");
        assert_eq!(a[0], 0x80);
        assert_ne!(a, b);
    }
}
