//! A component built for another version of the contract (`integrations:auth@0.9.0`).

wit_bindgen::generate!({
    inline: "
        package integrations:auth@0.9.0;
        interface auth-flow {
            metadata: func() -> string;
        }
        world plugin {
            export auth-flow;
        }
    ",
});

struct Future;

impl exports::integrations::auth::auth_flow::Guest for Future {
    fn metadata() -> String {
        "from the future".into()
    }
}

export!(Future);
