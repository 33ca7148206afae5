//! Ctrl-C while a deployment runs (deploy, rollback, apply, metadata apply).
//!
//! While a [`Watch`] exists, SIGINT no longer kills the process. The handler does only
//! async-signal-safe work: it counts the signal in an atomic and writes one byte to a
//! self-pipe. A watcher thread reads that pipe and sends PostgreSQL a cancel request for the
//! statement that is running ([`postgres::CancelToken`]), repeating it every 250 ms until the
//! executor [`acknowledge`]s the interrupt (a cancel that arrives between two statements is
//! ignored by the server; the next statement would otherwise run to its end). The executor
//! checks [`requested`] between statements, rolls back, and reports.
//!
//! A second Ctrl-C exits at once with status 130 (`_exit`, from the handler; if the first
//! one's cancel request has not left yet, after waiting for it at most half a second): the
//! server rolls back the open transaction when the connection drops, so that leaves no half
//! state either.
//!
//! When no [`Watch`] exists, SIGINT has its default behaviour: the handler is installed when
//! the watch is created and the previous disposition restored when it is dropped.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Exit status of an interrupted run (128 + SIGINT, as shells report it).
pub(crate) const EXIT_STATUS: u8 = 130;

static COUNT: AtomicUsize = AtomicUsize::new(0);
/// The watcher thread sent the cancel requests of the first Ctrl-C.
static CANCEL_SENT: AtomicBool = AtomicBool::new(false);
static ACKNOWLEDGED: AtomicBool = AtomicBool::new(false);
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
static INSTALLED: AtomicBool = AtomicBool::new(false);

const AGAIN: &[u8] =
    b"\ninterrupted again: exiting now; the server rolls back the open transaction\n";

extern "C" fn on_sigint(_: libc::c_int) {
    // Only async-signal-safe calls here: atomics, write(2), _exit(2). errno is preserved.
    unsafe {
        let errno = *libc::__errno_location();
        let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= 2 {
            libc::write(2, AGAIN.as_ptr().cast(), AGAIN.len());
            // Give the first Ctrl-C's cancel request up to half a second to leave: a backend
            // busy in a statement notices a closed connection only when the statement ends.
            let pause = libc::timespec {
                tv_sec: 0,
                tv_nsec: 10_000_000,
            };
            for _ in 0..50 {
                if CANCEL_SENT.load(Ordering::SeqCst) {
                    break;
                }
                libc::nanosleep(&pause, std::ptr::null_mut());
            }
            libc::_exit(EXIT_STATUS as libc::c_int);
        }
        let fd = PIPE_WRITE.load(Ordering::SeqCst);
        if fd >= 0 {
            let b = [1u8];
            libc::write(fd, b.as_ptr().cast(), 1);
        }
        *libc::__errno_location() = errno;
    }
}

/// Whether Ctrl-C was pressed since the current (or last) [`Watch`] was installed.
pub fn requested() -> bool {
    COUNT.load(Ordering::SeqCst) > 0
}

/// Interrupts process `pid` as Ctrl-C would (a fleet's rollout forwards one interrupt to each
/// database's child, which runs in its own process group). False when it is gone.
pub fn send_sigint(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    unsafe { libc::kill(pid, libc::SIGINT) == 0 }
}

/// The executor saw the interrupt and is stopping: stop re-sending cancel requests.
pub(crate) fn acknowledge() {
    ACKNOWLEDGED.store(true, Ordering::SeqCst);
}

/// Sends a cancel request for whatever `token`'s connection is running. Best effort: a
/// connection that requires TLS for the cancel request too is not cancelled (the executor still
/// stops at the next statement boundary).
fn cancel(token: &postgres::CancelToken) {
    let _ = token.cancel_query(postgres::NoTls);
}

/// SIGINT turned into "cancel and roll back" while this value lives.
pub struct Watch {
    old: libc::sigaction,
    read_fd: libc::c_int,
    write_fd: libc::c_int,
    tokens: Arc<Mutex<Vec<postgres::CancelToken>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    /// Installs the handler. `None` when another watch is active or the handler cannot be
    /// installed (SIGINT then keeps its default behaviour, which is safe too: the server rolls
    /// back when the connection drops).
    pub fn install() -> Option<Watch> {
        if INSTALLED.swap(true, Ordering::SeqCst) {
            return None;
        }
        let w = Self::install_inner();
        if w.is_none() {
            INSTALLED.store(false, Ordering::SeqCst);
        }
        w
    }

    fn install_inner() -> Option<Watch> {
        COUNT.store(0, Ordering::SeqCst);
        ACKNOWLEDGED.store(false, Ordering::SeqCst);
        CANCEL_SENT.store(false, Ordering::SeqCst);
        let mut fds = [0 as libc::c_int; 2];
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return None;
        }
        let (read_fd, write_fd) = (fds[0], fds[1]);
        let tokens: Arc<Mutex<Vec<postgres::CancelToken>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let tokens = tokens.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("git-migrate-sigint".into())
                .spawn(move || watch_pipe(read_fd, &tokens, &stop))
        };
        let Ok(thread) = thread else {
            unsafe {
                libc::close(read_fd);
                libc::close(write_fd);
            }
            return None;
        };
        PIPE_WRITE.store(write_fd, Ordering::SeqCst);
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        let ok = unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_sigint as *const () as libc::sighandler_t;
            new.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut new.sa_mask);
            libc::sigaction(libc::SIGINT, &new, &mut old) == 0
        };
        let w = Watch {
            old,
            read_fd,
            write_fd,
            tokens,
            stop,
            thread: Some(thread),
        };
        if !ok {
            // Dropping restores nothing harmful: `old` is whatever sigaction left there.
            PIPE_WRITE.store(-1, Ordering::SeqCst);
            w.shutdown_thread();
            std::mem::forget(w);
            return None;
        }
        Some(w)
    }

    /// Cancels `token`'s running statement on Ctrl-C.
    pub fn add(&self, token: postgres::CancelToken) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(token);
    }

    fn shutdown_thread(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let b = [0u8];
        unsafe {
            libc::write(self.write_fd, b.as_ptr().cast(), 1);
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        unsafe {
            libc::sigaction(libc::SIGINT, &self.old, std::ptr::null_mut());
        }
        PIPE_WRITE.store(-1, Ordering::SeqCst);
        self.shutdown_thread();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        unsafe {
            libc::close(self.read_fd);
            libc::close(self.write_fd);
        }
        INSTALLED.store(false, Ordering::SeqCst);
    }
}

/// The watcher thread: a byte 1 means SIGINT (cancel now, and again every 250 ms until
/// acknowledged), a byte 0 or end of file means stop.
fn watch_pipe(fd: libc::c_int, tokens: &Mutex<Vec<postgres::CancelToken>>, stop: &AtomicBool) {
    let cancel_all = || {
        let tokens = tokens.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for t in &tokens {
            cancel(t);
        }
        CANCEL_SENT.store(true, Ordering::SeqCst);
    };
    let mut fired = false;
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let timeout = if fired && !ACKNOWLEDGED.load(Ordering::SeqCst) {
            250
        } else {
            -1
        };
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let r = unsafe { libc::poll(&mut pfd, 1, timeout) };
        if r < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if r == 0 {
            if !ACKNOWLEDGED.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                cancel_all();
            }
            continue;
        }
        let mut b = [0u8; 1];
        let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if n == 0 || b[0] == 0 {
            return;
        }
        fired = true;
        if !ACKNOWLEDGED.load(Ordering::SeqCst) {
            cancel_all();
        }
    }
}
