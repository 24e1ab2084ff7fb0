//! End-to-end tests: host's library and binary against a real OAuth2 provider on 127.0.0.1.

mod any_provider;
mod catalog;
mod catalog_quirks;
mod cli;
mod co_tenant;
mod config;
mod device;
mod examples;
mod hardening;
mod lazy_flows;
mod library;
mod loopback;
mod messages;
mod oauth2_flow;
mod pg_store;
mod plugins;
mod plugins_cli;
mod spawnable;
mod stated_limits;
mod support;
mod terminal_output;
mod token_endpoint;
mod use_credentials;
