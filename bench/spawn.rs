//! `spawn RUNS OUTPUT_FILE PROGRAM ARGS...`: runs a program RUNS times and prints one line per run,
//! "WALL_NS MAXRSS_KIB EXIT CPU_NS" (CPU = user + system time of the program and the children it waited for),
//! then keeps the first run's stdout in OUTPUT_FILE.
//!
//! Why a tiny static launcher instead of Python's subprocess: a child's peak RSS (getrusage) includes the memory
//! of the process it was forked from until exec, so a child of Python reports Python's 14 MiB. From this
//! launcher the floor is well under 1 MiB. Std only, so `rustc` builds it in seconds.

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::Instant;

extern "C" {
    // int wait4(pid_t pid, int *wstatus, int options, struct rusage *rusage);
    fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut [i64; 18]) -> i32;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: spawn RUNS OUTPUT_FILE PROGRAM ARGS...");
        std::process::exit(2);
    }
    let runs: usize = args[1].parse().expect("RUNS must be a number");
    for i in 0..runs {
        let stdout = if i == 0 {
            Stdio::from(File::create(&args[2]).expect("cannot create OUTPUT_FILE"))
        } else {
            Stdio::null()
        };
        let start = Instant::now();
        let child = Command::new(&args[3])
            .args(&args[4..])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start the program");
        let mut status = 0i32;
        // struct rusage on x86_64 Linux: two timevals (4 x i64), then ru_maxrss (KiB) and 13 more longs.
        let mut usage = [0i64; 18];
        let pid = child.id() as i32;
        let r = unsafe { wait4(pid, &mut status, 0, &mut usage) };
        let wall = start.elapsed().as_nanos();
        assert_eq!(r, pid, "wait4 failed");
        std::mem::forget(child); // already reaped by wait4
        let code = if status & 0x7f == 0 {
            (status >> 8) & 0xff
        } else {
            128 + (status & 0x7f)
        };
        // ru_utime and ru_stime: (seconds, microseconds) pairs at the start of struct rusage.
        let cpu = (usage[0] + usage[2]) * 1_000_000_000 + (usage[1] + usage[3]) * 1_000;
        println!("{} {} {} {}", wall, usage[4], code, cpu);
    }
}
