//! Interop with grpcio (Python on gRPC C-core): our interop client against
//! `python/server.py`, and `python/client.py` against our server.
//!
//! The first run creates a venv under `target/interop-venv` (`python3 -m venv`, then
//! `pip install grpcio grpcio-tools`, so it needs network access once) and generates
//! the Python stubs from `proto/` with `grpc_tools.protoc`. If any of that fails the
//! tests FAIL with the reason: a missing Python must not pass unnoticed.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use grpc_sansio_interop::client_cases::{self, CASES};
use grpc_sansio_interop::report::{Known, report};
use grpc_sansio_tokio::Channel;

/// How long a Python process may run.
const PYTHON_TIMEOUT: Duration = Duration::from_secs(60);

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => crate_dir().join("../target"),
    }
}

/// Panics with a message nobody can miss.
fn setup_failed(step: &str, detail: &str) -> ! {
    panic!(
        "\n\n==== PYTHON INTEROP SETUP FAILED ====\n{step}\n{detail}\n\
         These tests need python3 with the venv module (Debian/Ubuntu: apt-get install \
         python3-venv) and, on the first run, network access to PyPI for grpcio and \
         grpcio-tools. Delete target/interop-venv to retry from scratch.\n\
         =====================================\n"
    );
}

fn run(step: &str, cmd: &mut Command) {
    match cmd.output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => setup_failed(
            step,
            &format!(
                "{cmd:?} exited with {}\nstdout:\n{}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(e) => setup_failed(step, &format!("{cmd:?} could not start: {e}")),
    }
}

/// The Python environment: (python binary, PYTHONPATH with the stubs and scripts).
fn python() -> &'static (PathBuf, String) {
    static ENV: OnceLock<(PathBuf, String)> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    ENV.get_or_init(|| {
        let venv = target_dir().join("interop-venv");
        let python = venv.join("bin/python");
        let ready = venv.join(".grpcio-installed");
        if !ready.exists() {
            eprintln!("creating the Python venv {} (first run)", venv.display());
            run(
                "creating the venv (python3 -m venv)",
                Command::new("python3")
                    .arg("-m")
                    .arg("venv")
                    .arg("--clear")
                    .arg(&venv),
            );
            run(
                "installing grpcio and grpcio-tools (pip)",
                Command::new(&python)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ])
                    .args(["grpcio", "grpcio-tools"]),
            );
            std::fs::write(&ready, b"").expect("write the venv marker");
        }
        let gen_dir = venv.join("gen");
        let _ = std::fs::remove_dir_all(&gen_dir);
        std::fs::create_dir_all(&gen_dir).expect("create the stub directory");
        let proto = crate_dir().join("proto");
        let mut protoc = Command::new(&python);
        protoc
            .args(["-m", "grpc_tools.protoc"])
            .arg(format!("-I{}", proto.display()))
            .arg(format!("--python_out={}", gen_dir.display()))
            .arg(format!("--grpc_python_out={}", gen_dir.display()));
        for f in ["empty.proto", "messages.proto", "test.proto"] {
            protoc.arg(proto.join("testing_pb").join(f));
        }
        run(
            "generating the Python stubs (grpc_tools.protoc)",
            &mut protoc,
        );
        let path = format!(
            "{}:{}",
            gen_dir.display(),
            crate_dir().join("python").display()
        );
        (python, path)
    })
}

/// Kills the child on drop.
struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python_command(script: &str) -> Command {
    let (python, path) = python();
    let mut cmd = Command::new(python);
    cmd.arg("-u")
        .arg(crate_dir().join("python").join(script))
        .env("PYTHONPATH", path);
    cmd
}

/// Starts `server.py` on a free port; returns it and its port.
fn start_python_server() -> (Killer, u16) {
    let mut child = Killer(
        python_command("server.py")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| setup_failed("starting python/server.py", &e.to_string())),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| setup_failed("python/server.py", "did not report its port in 30 s"));
    let port = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            setup_failed(
                "python/server.py",
                &format!("unexpected first line {line:?}"),
            )
        });
    (child, port)
}

/// grpcio's server API does not say whether a request came compressed (C-core strips
/// `grpc-encoding` from the invocation metadata), so `server.py` cannot refuse the
/// compression probe with INVALID_ARGUMENT (grpc/grpc's own Python interop server does
/// not run these cases either).
const PYTHON_SERVER_KNOWN: Known = &[
    (
        "client_compressed_unary",
        "grpcio server cannot see request compression",
    ),
    (
        "client_compressed_streaming",
        "grpcio server cannot see request compression",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_python_server() {
    let (_server, port) = tokio::task::spawn_blocking(start_python_server)
        .await
        .unwrap();
    let channel = Channel::builder(format!("passthrough:///127.0.0.1:{port}"))
        .connect_lazy()
        .unwrap();
    let mut results = Vec::new();
    for case in CASES {
        results.push((case.to_string(), client_cases::run(&channel, case).await));
    }
    report(
        "grpc-sansio client -> grpcio (Python) server",
        &results,
        PYTHON_SERVER_KNOWN,
    );
}

/// Runs `client.py --test_case=all` against `port`; its per-case lines.
fn run_python_client(port: u16) -> Vec<(String, Result<(), String>)> {
    let mut child = Killer(
        python_command("client.py")
            .args(["--server_host=127.0.0.1", &format!("--server_port={port}")])
            .arg("--test_case=all")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| setup_failed("starting python/client.py", &e.to_string())),
    );
    let stdout = child.0.stdout.take().unwrap();
    let stderr = child.0.stderr.take().unwrap();
    let out = std::thread::spawn(move || read_all(stdout));
    let err = std::thread::spawn(move || read_all(stderr));
    let started = Instant::now();
    while child.0.try_wait().ok().flatten().is_none() {
        assert!(
            started.elapsed() < PYTHON_TIMEOUT,
            "python/client.py still running after {PYTHON_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = out.join().unwrap();
    let err = err.join().unwrap();
    let mut results = Vec::new();
    for line in out.lines() {
        if let Some((case, rest)) = line.split_once(": ") {
            let r = match rest.strip_prefix("FAIL: ") {
                Some(why) => Err(why.to_owned()),
                None if rest == "PASS" => Ok(()),
                None => Err(rest.to_owned()),
            };
            results.push((case.to_owned(), r));
        }
    }
    let missing: Vec<_> = CASES
        .iter()
        .filter(|c| !results.iter().any(|(r, _)| r == *c))
        .collect();
    assert!(
        missing.is_empty(),
        "python/client.py reported nothing for {missing:?}\nstdout:\n{out}\nstderr:\n{err}"
    );
    results
}

fn read_all(r: impl std::io::Read) -> String {
    let mut s = String::new();
    let _ = BufReader::new(r).read_to_string(&mut s);
    s
}

use std::io::Read as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_against_our_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(grpc_sansio_interop::server::serve::<grpc_sansio_tokio::Tokio>(listener));
    let results = tokio::task::spawn_blocking(move || run_python_client(port))
        .await
        .unwrap();
    report(
        "grpcio (Python) client -> grpc-sansio server",
        &results,
        &[],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_async_std_client_against_python_server() {
    let (_server, port) = tokio::task::spawn_blocking(start_python_server)
        .await
        .unwrap();
    let results = tokio::task::spawn_blocking(move || {
        async_std::task::block_on(async {
            let channel =
                grpc_sansio_async_std::Channel::builder(format!("passthrough:///127.0.0.1:{port}"))
                    .connect_lazy()
                    .unwrap();
            let mut results = Vec::new();
            for case in CASES {
                results.push((case.to_string(), client_cases::run(&channel, case).await));
            }
            results
        })
    })
    .await
    .unwrap();
    report(
        "grpc-sansio async-std client -> grpcio (Python) server",
        &results,
        PYTHON_SERVER_KNOWN,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_against_our_async_std_server() {
    let listener = tokio::task::spawn_blocking(|| {
        async_std::task::block_on(async_std::net::TcpListener::bind("127.0.0.1:0")).unwrap()
    })
    .await
    .unwrap();
    let port = listener.local_addr().unwrap().port();
    async_std::task::spawn(grpc_sansio_interop::server::serve::<
        grpc_sansio_async_std::AsyncStd,
    >(listener));
    let results = tokio::task::spawn_blocking(move || run_python_client(port))
        .await
        .unwrap();
    report(
        "grpcio (Python) client -> grpc-sansio async-std server",
        &results,
        &[],
    );
}
