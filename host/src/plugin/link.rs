//! Linking what a plugin imports, on demand.
//!
//! Linking every WASI p2 and `wasi:http` interface up front cost ~0.3 ms of a fresh process's
//! plugin engine start (some 200 host functions defined and their types registered), most of
//! them interfaces no plugin of ours imports (sockets, files, `wasi:http`). Instead each
//! interface is linked the first time a loaded component imports it. The table holds exactly
//! the interfaces `wasmtime_wasi::p2::add_to_linker_async` and
//! `wasmtime_wasi_http::p2::add_only_http_to_linker_async` link, with the same functions, so a
//! component from any toolchain links as before; an import outside it stays unlinked and
//! is reported as unsupported, as before.

use wasmtime::component::{HasData, HasSelf, Linker, ResourceTable};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2::bindings as wasi;
use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};
use wasmtime_wasi::{WasiView, p2};
use wasmtime_wasi_http::p2::bindings as wasi_http;
use wasmtime_wasi_http::{WasiHttp, WasiHttpView};

use super::bindings::{v0_1, v0_2};
use super::imports::StoreState;

/// `wasi:io` works on the resource table alone.
struct IoTable;

impl HasData for IoTable {
    type Data<'a> = &'a mut ResourceTable;
}

type Add = fn(&mut Linker<StoreState>) -> wasmtime::Result<()>;
type S = StoreState;

/// Every interface a plugin may import, by name without version, and how to link it.
const INTERFACES: &[(&str, Add)] = &[
    ("wasi:io/error", |l| {
        wasi::io::error::add_to_linker::<S, IoTable>(l, |t| t.ctx().table)
    }),
    ("wasi:io/poll", |l| {
        wasi::io::poll::add_to_linker::<S, IoTable>(l, |t| t.ctx().table)
    }),
    ("wasi:io/streams", |l| {
        wasi::io::streams::add_to_linker::<S, IoTable>(l, |t| t.ctx().table)
    }),
    ("wasi:clocks/wall-clock", |l| {
        wasi::clocks::wall_clock::add_to_linker::<S, WasiClocks>(l, S::clocks)
    }),
    ("wasi:clocks/monotonic-clock", |l| {
        wasi::clocks::monotonic_clock::add_to_linker::<S, WasiClocks>(l, S::clocks)
    }),
    ("wasi:filesystem/types", |l| {
        wasi::filesystem::types::add_to_linker::<S, WasiFilesystem>(l, S::filesystem)
    }),
    ("wasi:filesystem/preopens", |l| {
        wasi::filesystem::preopens::add_to_linker::<S, WasiFilesystem>(l, S::filesystem)
    }),
    ("wasi:random/random", |l| {
        wasi::random::random::add_to_linker::<S, WasiRandom>(l, S::random)
    }),
    ("wasi:random/insecure", |l| {
        wasi::random::insecure::add_to_linker::<S, WasiRandom>(l, S::random)
    }),
    ("wasi:random/insecure-seed", |l| {
        wasi::random::insecure_seed::add_to_linker::<S, WasiRandom>(l, S::random)
    }),
    ("wasi:cli/exit", |l| {
        wasi::cli::exit::add_to_linker::<S, WasiCli>(l, S::cli)
    }),
    ("wasi:cli/environment", |l| {
        wasi::cli::environment::add_to_linker::<S, WasiCli>(l, S::cli)
    }),
    ("wasi:cli/stdin", |l| {
        wasi::cli::stdin::add_to_linker::<S, WasiCli>(l, S::cli)
    }),
    ("wasi:cli/stdout", |l| {
        wasi::cli::stdout::add_to_linker::<S, WasiCli>(l, S::cli)
    }),
    ("wasi:cli/stderr", |l| {
        wasi::cli::stderr::add_to_linker::<S, WasiCli>(l, S::cli)
    }),
    ("wasi:cli/terminal-input", |l| {
        wasi::cli::terminal_input::add_to_linker::<S, WasiCli>(l, S::cli)
    }),
    ("wasi:cli/terminal-output", |l| {
        wasi::cli::terminal_output::add_to_linker::<S, WasiCli>(l, S::cli)
    }),
    ("wasi:cli/terminal-stdin", |l| {
        wasi::cli::terminal_stdin::add_to_linker::<S, WasiCli>(l, S::cli)
    }),
    ("wasi:cli/terminal-stdout", |l| {
        wasi::cli::terminal_stdout::add_to_linker::<S, WasiCli>(l, S::cli)
    }),
    ("wasi:cli/terminal-stderr", |l| {
        wasi::cli::terminal_stderr::add_to_linker::<S, WasiCli>(l, S::cli)
    }),
    ("wasi:sockets/tcp", |l| {
        wasi::sockets::tcp::add_to_linker::<S, WasiSockets>(l, S::sockets)
    }),
    ("wasi:sockets/tcp-create-socket", |l| {
        wasi::sockets::tcp_create_socket::add_to_linker::<S, WasiSockets>(l, S::sockets)
    }),
    ("wasi:sockets/udp", |l| {
        wasi::sockets::udp::add_to_linker::<S, WasiSockets>(l, S::sockets)
    }),
    ("wasi:sockets/udp-create-socket", |l| {
        wasi::sockets::udp_create_socket::add_to_linker::<S, WasiSockets>(l, S::sockets)
    }),
    ("wasi:sockets/instance-network", |l| {
        wasi::sockets::instance_network::add_to_linker::<S, WasiSockets>(l, S::sockets)
    }),
    ("wasi:sockets/network", |l| {
        let options = p2::bindings::LinkOptions::default();
        wasi::sockets::network::add_to_linker::<S, WasiSockets>(l, &(&options).into(), S::sockets)
    }),
    ("wasi:sockets/ip-name-lookup", |l| {
        wasi::sockets::ip_name_lookup::add_to_linker::<S, WasiSockets>(l, S::sockets)
    }),
    ("wasi:http/outgoing-handler", |l| {
        wasi_http::http::outgoing_handler::add_to_linker::<S, WasiHttp>(l, S::http)
    }),
    ("wasi:http/types", |l| {
        let options = wasi_http::LinkOptions::default();
        wasi_http::http::types::add_to_linker::<S, WasiHttp>(l, &(&options).into(), S::http)
    }),
];

/// The linker and which interfaces it holds so far.
pub(crate) struct OnDemandLinker {
    linker: Linker<StoreState>,
    /// Per entry of [`INTERFACES`]: linked yet?
    linked: [bool; INTERFACES.len()],
    /// Our own contract's imports, per WIT version: linked yet?
    contract_0_1: bool,
    contract_0_2: bool,
}

impl OnDemandLinker {
    /// A linker holding nothing yet.
    pub(crate) fn new(engine: &wasmtime::Engine) -> Self {
        Self {
            linker: Linker::new(engine),
            linked: [false; INTERFACES.len()],
            contract_0_1: false,
            contract_0_2: false,
        }
    }

    /// Links what a component importing `imports` (full names, with versions) needs, for a
    /// plugin built for contract version `wit_version`, and returns the linker.
    pub(crate) fn for_imports<'a>(
        &mut self,
        imports: impl IntoIterator<Item = &'a str>,
        wit_version: &str,
    ) -> wasmtime::Result<&Linker<StoreState>> {
        for import in imports {
            let name = import.split_once('@').map_or(import, |(name, _)| name);
            if let Some(i) = INTERFACES.iter().position(|(n, _)| *n == name)
                && !self.linked[i]
            {
                (INTERFACES[i].1)(&mut self.linker)?;
                self.linked[i] = true;
            }
        }
        if wit_version == super::WIT_VERSION {
            if !self.contract_0_2 {
                v0_2::Plugin::add_to_linker::<_, HasSelf<StoreState>>(&mut self.linker, |s| s)?;
                self.contract_0_2 = true;
            }
        } else if !self.contract_0_1 {
            v0_1::Plugin::add_to_linker::<_, HasSelf<StoreState>>(&mut self.linker, |s| s)?;
            self.contract_0_1 = true;
        }
        Ok(&self.linker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table's interfaces link together without a clash, and each one defines names
    /// wasmtime's own all-at-once functions define (a linker holding those refuses it again):
    /// the table invents nothing. That it misses nothing the end-to-end tests show: the
    /// componentize-py plugin imports most of WASI p2 and must load.
    #[test]
    fn the_table_links_wasmtimes_own_interfaces() {
        let engine = wasmtime::Engine::default();
        let mut ours: Linker<StoreState> = Linker::new(&engine);
        for (name, add) in INTERFACES {
            add(&mut ours).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let mut theirs: Linker<StoreState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut theirs).unwrap();
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut theirs).unwrap();
        for (name, add) in INTERFACES {
            assert!(add(&mut theirs).is_err(), "{name} is not one of wasmtime's");
        }
        let mut names: Vec<&str> = INTERFACES.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            INTERFACES.len(),
            "an interface is listed twice"
        );
    }
}
