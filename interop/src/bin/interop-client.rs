//! The interop test client: runs `--test_case` (one case, a comma-separated list, or
//! `all`) against the server at `--server_host:--server_port`.

use grpc_sansio_interop::client_cases;
use grpc_sansio_interop::flags::Flags;
use grpc_sansio_runtime::{Channel, Runtime, TlsConfig};

const USAGE: &str = "usage: interop-client --server_host=HOST --server_port=PORT --test_case=CASE \
[--use_tls=false] [--use_test_ca=false] [--ca_file=F] [--server_host_override=NAME] \
[--runtime=tokio|async-std]";

fn main() {
    let flags = match Flags::parse(
        std::env::args().skip(1),
        &[
            "server_host",
            "server_port",
            "test_case",
            "use_tls",
            "use_test_ca",
            "ca_file",
            "server_host_override",
            "runtime",
        ],
        &["use_tls", "use_test_ca"],
    ) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let (use_tls, use_test_ca) = match (flags.bool("use_tls"), flags.bool("use_test_ca")) {
        (Ok(t), Ok(c)) => (t, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let tls = use_tls.then(|| {
        let mut cfg = TlsConfig::new();
        if use_test_ca {
            // The test CA: --ca_file, else SSL_CERT_FILE (the interop convention).
            let ca = flags
                .get("ca_file")
                .map(str::to_owned)
                .or_else(|| std::env::var("SSL_CERT_FILE").ok());
            match ca {
                Some(path) => cfg = cfg.ca_file(path),
                None => {
                    eprintln!("--use_test_ca needs --ca_file or SSL_CERT_FILE\n{USAGE}");
                    std::process::exit(2);
                }
            }
        } else if let Some(path) = flags.get("ca_file") {
            cfg = cfg.ca_file(path.to_owned());
        }
        if let Some(name) = flags.get("server_host_override") {
            cfg = cfg.server_name_override(name.to_owned());
        }
        cfg
    });
    let host = flags.get_or("server_host", "localhost").to_owned();
    let Ok(port) = flags.get_or("server_port", "").parse::<u16>() else {
        eprintln!("--server_port must be a port number\n{USAGE}");
        std::process::exit(2);
    };
    let cases: Vec<String> = match flags.get_or("test_case", "large_unary") {
        "all" => client_cases::CASES.iter().map(|s| s.to_string()).collect(),
        list => list.split(',').map(str::to_owned).collect(),
    };
    let host_port = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let run = Run {
        target: format!("dns:///{host_port}"),
        authority: flags.get("server_host_override").map(str::to_owned),
        tls,
        cases,
    };
    let failed = match flags.get_or("runtime", "tokio") {
        "tokio" => {
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            rt.block_on(run.run::<grpc_sansio_tokio::Tokio>())
        }
        "async-std" => async_std::task::block_on(run.run::<grpc_sansio_async_std::AsyncStd>()),
        other => {
            eprintln!("--runtime={other}: expected tokio or async-std\n{USAGE}");
            std::process::exit(2);
        }
    };
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

/// What to run, on whichever runtime.
struct Run {
    target: String,
    authority: Option<String>,
    tls: Option<TlsConfig>,
    cases: Vec<String>,
}

impl Run {
    /// Runs every case on a channel of runtime `R`; the number that failed.
    async fn run<R: Runtime>(self) -> usize {
        let mut builder = Channel::<R>::builder(self.target.clone());
        if let Some(name) = &self.authority {
            builder = builder.authority(name.clone());
        }
        if let Some(cfg) = self.tls {
            builder = builder.tls(cfg);
        }
        let channel = match builder.connect_lazy() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("bad target {}: {e}", self.target);
                std::process::exit(2);
            }
        };
        let mut failed = 0;
        for case in &self.cases {
            match client_cases::run(&channel, case).await {
                Ok(()) => eprintln!("{case}: PASS"),
                Err(e) => {
                    eprintln!("{case}: FAIL: {e}");
                    failed += 1;
                }
            }
        }
        failed
    }
}
