//! A component that exports something, but not `auth-flow`.

wit_bindgen::generate!({
    inline: "
        package test:unrelated;
        world unrelated {
            export hello: func() -> string;
        }
    ",
});

struct Unrelated;

impl Guest for Unrelated {
    fn hello() -> String {
        "hello".into()
    }
}

export!(Unrelated);
