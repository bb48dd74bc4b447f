//! The browser half of the console: hydrates the server-rendered HTML.

// The Search page's view is one nested type (leptos keeps every element's
// type), and computing the layout of its hydration future goes deeper than
// rustc's default 128 in the release build (`scripts/up.sh`), which the
// debug build does not reach. Raised here, where the compiler asks for it.
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
