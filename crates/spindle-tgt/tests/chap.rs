//! CHAP: the right secret logs in, a wrong one gets "Authentication failure", with either
//! secret channel; a changed secret takes a new account; secrets stay out of errors.

#[macro_use]
mod common;

use common::{INIT_A, MIB};
use spindle_tgt::{Secret, SecretChannel, Tgtadm, UserName};

const SECRET: &str = "s3cret-Passw0rd";
const WRONG: &str = "wrong-Passw0rd!";

fn chap_round(channel: SecretChannel) {
    let inst = common::start_with(channel);
    let adm = inst.tgtd.tgtadm();
    let name = common::export(adm, 1, "chap", &[], &[(1, inst.lun("chap.img", 4 * MIB, 0x41))]);
    common::chap(adm, 1, "alice", SECRET);
    adm.bind_initiator(1, &spindle_tgt::Iqn::new(INIT_A).expect("valid"))
        .expect("bind initiator");

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

    assert_eq!(adm.accounts().expect("accounts"), vec!["alice"]);
    assert_eq!(common::show(adm, &name).accounts, vec!["alice"]);
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
fn a_new_secret_takes_a_new_account_which_every_target_must_be_bound_to_again() {
    require_tgtd!();
    let inst = common::start();
    let adm = inst.tgtd.tgtadm();
    let one = common::export(
        adm,
        1,
        "chg-1",
        &[INIT_A],
        &[(1, inst.lun("c1.img", 4 * MIB, 0x42))],
    );
    let two = common::export(
        adm,
        2,
        "chg-2",
        &[INIT_A],
        &[(1, inst.lun("c2.img", 4 * MIB, 0x43))],
    );
    let alice = UserName::new("alice").expect("valid");
    let new_secret = "n3w-secret-value";

    // Accounts are global: one account guards both targets.
    common::chap(adm, 1, "alice", SECRET);
    adm.bind_account(2, &alice).expect("bind to the second target");
    for t in [&one, &two] {
        assert!(inst.capacity(INIT_A, None, t, 1).is_err(), "{t} without CHAP");
        assert_eq!(
            inst.capacity(INIT_A, Some(("alice", SECRET)), t, 1)
                .expect("right secret"),
            4 * MIB
        );
    }

    // tgtd cannot change a secret: the account exists already...
    let err = adm
        .new_account(&alice, &Secret::new(new_secret).expect("valid"))
        .expect_err("second account of the same name");
    assert_eq!(err.adm_error(), Some(spindle_tgt::AdmError::UserExists), "{err}");

    // ...and deleting it unbinds it from every target, which then lets the ACL in without
    // CHAP (callers bind a placeholder account first to avoid that window).
    adm.delete_account("alice").expect("delete account");
    assert!(adm.accounts().expect("accounts").is_empty());
    for t in [&one, &two] {
        assert!(common::show(adm, t).accounts.is_empty(), "{t} still bound");
        assert_eq!(
            inst.capacity(INIT_A, None, t, 1).expect("no CHAP any more"),
            4 * MIB
        );
    }

    // Created again with the new secret and bound again: only the new secret works.
    common::chap(adm, 1, "alice", new_secret);
    adm.bind_account(2, &alice).expect("bind to the second target");
    for t in [&one, &two] {
        assert!(
            inst.capacity(INIT_A, Some(("alice", SECRET)), t, 1).is_err(),
            "old secret still works on {t}"
        );
        assert_eq!(
            inst.capacity(INIT_A, Some(("alice", new_secret)), t, 1)
                .expect("new secret"),
            4 * MIB
        );
    }

    // Unbinding the account from one target opens that target to its ACL without CHAP; the
    // other still requires it.
    adm.unbind_account(1, "alice").expect("unbind");
    assert!(common::show(adm, &one).accounts.is_empty());
    assert_eq!(
        inst.capacity(INIT_A, None, &one, 1).expect("no CHAP any more"),
        4 * MIB
    );
    assert!(inst.capacity(INIT_A, None, &two, 1).is_err());
    assert_eq!(adm.accounts().expect("accounts"), vec!["alice"]);
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
    // Every show goes over the socket too; the rest needs the program.
    assert_eq!(
        no_program.accounts().expect("accounts over the socket"),
        vec!["socket-only"]
    );
    assert!(
        no_program.delete_account("socket-only").is_err(),
        "deleting needs tgtadm"
    );
    assert_eq!(
        inst.tgtd.tgtadm().accounts().expect("accounts"),
        vec!["socket-only"]
    );
}
