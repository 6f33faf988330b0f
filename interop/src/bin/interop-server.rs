//! The interop test server: grpc.testing.TestService on `--port`.

use grpc_sansio_interop::flags::Flags;

const USAGE: &str = "usage: interop-server --port=PORT [--use_tls=false] [--tls_cert_file=F] \
[--tls_key_file=F] [--runtime=tokio|async-std]";

fn main() {
    let flags = match Flags::parse(
        std::env::args().skip(1),
        &[
            "port",
            "use_tls",
            "tls_cert_file",
            "tls_key_file",
            "runtime",
        ],
        &["use_tls"],
    ) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let use_tls = flags.bool("use_tls").unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let acceptor = if use_tls {
        let (Some(cert), Some(key)) = (flags.get("tls_cert_file"), flags.get("tls_key_file"))
        else {
            eprintln!("--use_tls needs --tls_cert_file and --tls_key_file\n{USAGE}");
            std::process::exit(2);
        };
        let read = |path: &str| {
            std::fs::read(path).unwrap_or_else(|e| {
                eprintln!("reading {path}: {e}");
                std::process::exit(2)
            })
        };
        match grpc_sansio_runtime::TlsAcceptor::new(&read(cert), &read(key)) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("TLS: {e}");
                std::process::exit(2);
            }
        }
    } else {
        None
    };
    let port: u16 = match flags.get_or("port", "").parse() {
        Ok(p) => p,
        Err(_) => {
            eprintln!("--port must be a port number\n{USAGE}");
            std::process::exit(2);
        }
    };
    let result = match flags.get_or("runtime", "tokio") {
        "tokio" => {
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            rt.block_on(async {
                // Both address families when the host has them; IPv4 otherwise.
                let listener = match tokio::net::TcpListener::bind(("::", port)).await {
                    Ok(l) => l,
                    Err(_) => tokio::net::TcpListener::bind(("0.0.0.0", port)).await?,
                };
                eprintln!(
                    "interop-server (tokio) listening on {}",
                    listener.local_addr()?
                );
                serve::<grpc_sansio_tokio::Tokio>(listener, acceptor).await
            })
        }
        "async-std" => async_std::task::block_on(async {
            let listener = match async_std::net::TcpListener::bind(("::", port)).await {
                Ok(l) => l,
                Err(_) => async_std::net::TcpListener::bind(("0.0.0.0", port)).await?,
            };
            eprintln!(
                "interop-server (async-std) listening on {}",
                listener.local_addr()?
            );
            serve::<grpc_sansio_async_std::AsyncStd>(listener, acceptor).await
        }),
        other => {
            eprintln!("--runtime={other}: expected tokio or async-std\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("interop-server: {e}");
        std::process::exit(1);
    }
}

async fn serve<R: grpc_sansio_runtime::Runtime>(
    listener: R::Listener,
    acceptor: Option<grpc_sansio_runtime::TlsAcceptor>,
) -> std::io::Result<()> {
    match acceptor {
        Some(acceptor) => grpc_sansio_interop::server::serve_tls::<R>(listener, acceptor).await,
        None => grpc_sansio_interop::server::serve::<R>(listener).await,
    }
}
