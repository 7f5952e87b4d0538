//! CHAP: the right secret logs in, a wrong one gets "Authentication failure", with either
//! secret channel; a changed secret is applied; secrets stay out of errors.

#[macro_use]
mod common;

use common::{INIT_A, MIB};
use spindle_tgt::{reconcile, Action, Secret, SecretChannel, Tgtadm, UserName};

const SECRET: &str = "s3cret-Passw0rd";
const WRONG: &str = "wrong-Passw0rd!";

fn chap_round(channel: SecretChannel) {
    let inst = common::start_with(channel);
    let mut t = common::target(&[INIT_A], vec![(1, inst.lun("chap.img", 4 * MIB, 0x41))]);
    t.accounts.insert(
        UserName::new("alice").expect("valid"),
        Secret::new(SECRET).expect("valid"),
    );
    let want = common::desired(vec![("chap", t)]);
    let report = reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile");
    assert!(report.is_clean(), "{report}");
    assert!(report
        .actions
        .contains(&Action::CreateAccount { user: "alice".into() }));
    let name = common::name("chap").to_string();

    let no_creds = inst
        .capacity(INIT_A, None, &name, 1)
        .expect_err("logged in without CHAP");
    assert!(
        no_creds.text.contains("Authentication failure"),
        "{}",
        no_creds.text
    );
    let wrong = inst
        .capacity(INIT_A, Some(("alice", WRONG)), &name, 1)
        .expect_err("wrong secret worked");
    assert!(wrong.text.contains("Authentication failure"), "{}", wrong.text);
    let wrong_user = inst
        .capacity(INIT_A, Some(("mallory", SECRET)), &name, 1)
        .expect_err("wrong user worked");
    assert!(
        wrong_user.text.contains("Authentication failure"),
        "{}",
        wrong_user.text
    );
    assert_eq!(
        inst.capacity(INIT_A, Some(("alice", SECRET)), &name, 1)
            .expect("right secret"),
        4 * MIB
    );
    let (out, seen) = inst.ls(INIT_A, Some(("alice", SECRET)));
    assert_eq!(
        seen[&name].keys().copied().collect::<Vec<_>>(),
        vec![1],
        "{}",
        out.text
    );

    assert_eq!(inst.tgtd.tgtadm().accounts().expect("accounts"), vec!["alice"]);
    let info = inst
        .tgtd
        .tgtadm()
        .target_by_name(&name)
        .expect("show")
        .expect("target");
    assert_eq!(info.accounts, vec!["alice"]);
    assert!(reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile").is_noop());
    assert!(
        !common::log(inst.dir.path()).contains(SECRET),
        "tgtd logged the secret"
    );
}

#[test]
fn chap_with_secret_over_the_management_socket() {
    require_tgtd!();
    chap_round(SecretChannel::ManagementSocket);
}

#[test]
fn chap_with_secret_on_the_tgtadm_command_line() {
    require_tgtd!();
    chap_round(SecretChannel::CommandLine);
}

#[test]
fn a_changed_secret_is_applied_and_an_unknown_one_is_reset_once() {
    require_tgtd!();
    let inst = common::start();
    let mut t = common::target(&[INIT_A], vec![(1, inst.lun("c.img", 4 * MIB, 0x42))]);
    let alice = UserName::new("alice").expect("valid");
    t.accounts
        .insert(alice.clone(), Secret::new(SECRET).expect("valid"));
    let mut want = common::desired(vec![("chg", t)]);
    assert!(reconcile(inst.tgtd.tgtadm(), &want)
        .expect("reconcile")
        .is_clean());
    let name = common::name("chg").to_string();

    let new_secret = "n3w-secret-value";
    want.targets.values_mut().for_each(|t| {
        t.accounts
            .insert(alice.clone(), Secret::new(new_secret).expect("valid"));
    });
    let report = reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile");
    assert_eq!(
        report.actions,
        vec![Action::RecreateAccount { user: "alice".into() }],
        "{report}"
    );
    assert!(
        inst.capacity(INIT_A, Some(("alice", SECRET)), &name, 1).is_err(),
        "old secret still works"
    );
    assert_eq!(
        inst.capacity(INIT_A, Some(("alice", new_secret)), &name, 1)
            .expect("new secret"),
        4 * MIB
    );
    assert!(reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile").is_noop());

    // A new client (spindle restarted, tgtd did not) cannot know the secret tgtd holds:
    // it re-creates the account once, keeping its bindings, then is idle.
    let fresh = Tgtadm::new(inst.tgtd.tgtadm().control_port())
        .expect("client")
        .with_ipc_socket_base(inst.dir.path().join("sock"));
    let report = reconcile(&fresh, &want).expect("reconcile");
    assert_eq!(
        report.actions,
        vec![Action::RecreateAccount { user: "alice".into() }],
        "{report}"
    );
    assert!(reconcile(&fresh, &want).expect("reconcile").is_noop());
    assert_eq!(
        inst.capacity(INIT_A, Some(("alice", new_secret)), &name, 1)
            .expect("new secret"),
        4 * MIB
    );

    // Removing the account opens the target to its ACL without CHAP.
    want.targets.values_mut().for_each(|t| t.accounts.clear());
    let report = reconcile(&fresh, &want).expect("reconcile");
    assert_eq!(
        report.actions,
        vec![Action::DeleteAccount { user: "alice".into() }],
        "{report}"
    );
    assert!(fresh.accounts().expect("accounts").is_empty());
    assert_eq!(
        inst.capacity(INIT_A, None, &name, 1).expect("no CHAP any more"),
        4 * MIB
    );
}

#[test]
fn secrets_never_reach_error_messages() {
    require_tgtd!();
    let inst = common::start();
    for channel in [SecretChannel::ManagementSocket, SecretChannel::CommandLine] {
        let adm = inst.tgtd.tgtadm().clone().with_secret_channel(channel);
        let user = UserName::new("dup").expect("valid");
        let secret = Secret::new("dont-leak-this-1").expect("valid");
        adm.new_account(&user, &secret).expect("first");
        let err = adm.new_account(&user, &secret).expect_err("duplicate account");
        let text = format!("{err} {err:?}");
        assert!(!text.contains("dont-leak-this-1"), "{text}");
        assert_eq!(err.adm_error(), Some(spindle_tgt::AdmError::UserExists), "{text}");
        adm.delete_account("dup").expect("delete");
    }
}

#[test]
fn the_management_socket_channel_runs_no_program_with_the_secret() {
    require_tgtd!();
    let inst = common::start();
    // A client whose tgtadm does not exist: account creation still works, so the secret
    // cannot have been on any command line.
    let no_program = Tgtadm::new(inst.tgtd.tgtadm().control_port())
        .expect("client")
        .with_program("/nonexistent/tgtadm")
        .with_ipc_socket_base(inst.dir.path().join("sock"));
    let user = UserName::new("socket-only").expect("valid");
    no_program
        .new_account(&user, &Secret::new("never-on-argv-1").expect("valid"))
        .expect("account over the socket");
    assert!(no_program.accounts().is_err(), "listing needs tgtadm");
    assert_eq!(
        inst.tgtd.tgtadm().accounts().expect("accounts"),
        vec!["socket-only"]
    );
}
