//! The host side of the `broker`, `config` and `log` imports, linked by
//! hand rather than through `bindgen!`'s traits so that every string and list
//! a plugin passes is measured *in guest memory* ([`WasmStr`], [`WasmList`])
//! and refused or cut before the host copies, formats, logs or records it.
//! (Generated bindings would lift each argument into an owned `String` of
//! whatever size the guest chose first.)

use super::bindings::fastmcp::plugin::{broker, log};
use super::call_data::{CallData, MAX_LOG_MESSAGE};
use super::contract::SUPPORTED_VERSIONS;
use crate::text;
use wasmtime::component::{Linker, WasmList, WasmStr};
use wasmtime::{AsContextMut, StoreContextMut};

/// Longest provider name a plugin may ask for (provider names are at most 64).
pub const MAX_PROVIDER_NAME: usize = 64;
/// Most scopes in one `get-token` request.
pub const MAX_SCOPES: usize = 32;
/// Longest scope in a `get-token` request.
pub const MAX_SCOPE: usize = 256;
/// Longest `config` key (manifest keys are at most 64).
pub const MAX_CONFIG_KEY: usize = 64;

/// Link the three imports into `linker`, once per supported contract
/// version: the interfaces are the same in every version, so one
/// implementation serves each (wasmtime checks the types structurally).
pub fn add_to_linker(linker: &mut Linker<CallData>) -> wasmtime::Result<()> {
    for version in SUPPORTED_VERSIONS {
        add_version(linker, version)?;
    }
    Ok(())
}

fn add_version(linker: &mut Linker<CallData>, version: &str) -> wasmtime::Result<()> {
    linker.instance(&format!("fastmcp:plugin/broker@{version}"))?.func_wrap_async(
        "get-token",
        |mut store: StoreContextMut<'_, CallData>, (provider, scopes): (WasmStr, WasmList<WasmStr>)| {
            Box::new(async move {
                let answer = match read_token_request(&mut store, &provider, &scopes) {
                    Ok((provider, scopes)) => store.data_mut().get_token(provider, scopes).await,
                    Err((provider, reason)) => {
                        store.data_mut().refuse_token(provider, Vec::new(), reason.clone());
                        Err(broker::BrokerError::NotGranted(reason))
                    }
                };
                Ok((answer,))
            })
        },
    )?;
    linker.instance(&format!("fastmcp:plugin/config@{version}"))?.func_wrap_async(
        "get",
        |store: StoreContextMut<'_, CallData>, (key,): (WasmStr,)| {
            Box::new(async move {
                let value = match key.to_str(&store) {
                    Ok(key) if key.len() <= MAX_CONFIG_KEY => store.data().config_value(&key),
                    _ => None,
                };
                Ok((value,))
            })
        },
    )?;
    linker.instance(&format!("fastmcp:plugin/log@{version}"))?.func_wrap_async(
        "log",
        |mut store: StoreContextMut<'_, CallData>, (level, message): (log::Level, WasmStr)| {
            Box::new(async move {
                let message = message.to_str(&store)?;
                let message = text::prefix(&message, MAX_LOG_MESSAGE).to_owned();
                store.as_context_mut().data_mut().log(level, &message);
                Ok(())
            })
        },
    )?;
    Ok(())
}

/// The provider and scopes of a `get-token` call, if they are within the
/// bounds; otherwise the provider (cut) and why not.
fn read_token_request(
    store: &mut StoreContextMut<'_, CallData>,
    provider: &WasmStr,
    scopes: &WasmList<WasmStr>,
) -> Result<(String, Vec<String>), (String, String)> {
    let provider = match provider.to_str(&*store) {
        Ok(name) if name.len() <= MAX_PROVIDER_NAME => name.into_owned(),
        Ok(name) => {
            let reason = format!("provider names are at most {MAX_PROVIDER_NAME} bytes");
            return Err((text::clip(&name, MAX_PROVIDER_NAME).into_owned(), reason));
        }
        Err(_) => return Err((String::new(), "the provider name is not valid UTF-8".into())),
    };
    if scopes.len() > MAX_SCOPES {
        return Err((provider, format!("at most {MAX_SCOPES} scopes")));
    }
    let mut owned = Vec::with_capacity(scopes.len());
    let items =
        scopes.iter(store.as_context_mut()).map_err(|_| (provider.clone(), "bad scopes".to_owned()))?;
    let strings: Vec<WasmStr> =
        items.collect::<Result<_, _>>().map_err(|_| (provider.clone(), "bad scopes".to_owned()))?;
    for scope in &strings {
        match scope.to_str(&*store) {
            Ok(scope) if scope.len() <= MAX_SCOPE => owned.push(scope.into_owned()),
            _ => return Err((provider, format!("scopes are at most {MAX_SCOPE} bytes of UTF-8"))),
        }
    }
    Ok((provider, owned))
}
