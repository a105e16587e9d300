//! `harden_process` in a process of its own (it changes the process's limits and umask,
//! which would leak into other tests run in the same binary).

#[test]
fn hardening_makes_the_process_undumpable() {
    // In this test process (its own binary): the same call `run` makes first.
    gaap_autoscaler::daemon::cmd::harden_process().unwrap();
    // SAFETY: reads this process's flag.
    let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
    assert_eq!(dumpable, 0);
    let mut lim = libc::rlimit {
        rlim_cur: 1,
        rlim_max: 1,
    };
    // SAFETY: writes into `lim`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut lim) }, 0);
    assert_eq!((lim.rlim_cur, lim.rlim_max), (0, 0));
}
