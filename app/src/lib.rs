//! The Attest console: pages, components, server functions and the types
//! shared between the server and the browser.

pub mod alerts_model;
pub mod autocomplete;
pub mod charts;
pub mod dashboard_model;
pub mod dead_letters_model;
pub mod detections_model;
pub mod export_progress;
pub mod integrity_model;
pub mod model;
pub mod pages;
pub mod pipeline_model;
pub mod query;
pub mod redactions_model;
pub mod search_model;
pub mod search_state;
pub mod session;
#[cfg(feature = "ssr")]
pub mod store;
pub mod tail;
pub mod timefmt;
pub mod trends_model;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    ParamSegment, StaticSegment,
};

/// The HTML document around the app; rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    session::provide_viewer();
    // Effects run only in the browser: this marks the moment the page became
    // interactive, which browser tests wait for before they click.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/attest.css"/>
        <Title text="Attest"/>
        <Router>
            <header class="topbar">
                <A href="/dashboard" attr:class="brand">"Attest"</A>
                <nav aria-label="Main">
                    <A href="/dashboard">"Dashboard"</A>
                    <A href="/search" attr:class="nav-primary">"Search"</A>
                    <A href="/detections">"Detections"</A>
                    <A href="/" exact=true>"Latest events"</A>
                    <pages::AdminNavLink href="/pipeline" label="Pipeline"/>
                    <pages::AdminNavLink href="/dead-letters" label="Dead letters"/>
                    <pages::AdminNavLink href="/alerts" label="Alerts"/>
                    <pages::AdminNavLink href="/redactions" label="Redactions"/>
                </nav>
                <session::ViewerMenu/>
            </header>
            <main>
                <Routes fallback=|| view! { <pages::NotFound/> }>
                    <Route path=StaticSegment("") view=pages::events::EventsPage/>
                    <Route path=StaticSegment("search") view=pages::search::SearchPage/>
                    <Route path=StaticSegment("dashboard") view=pages::dashboard::DashboardPage/>
                    <Route path=StaticSegment("login") view=pages::login::LoginPage/>
                    <Route path=StaticSegment("pipeline") view=pages::pipeline::PipelinePage/>
                    <Route path=StaticSegment("dead-letters") view=pages::dead_letters::DeadLettersPage/>
                    <Route path=StaticSegment("alerts") view=pages::alerts::AlertsPage/>
                    <Route path=StaticSegment("detections") view=pages::detections::DetectionsPage/>
                    <Route path=StaticSegment("redactions") view=pages::redactions::RedactionsPage/>
                    <Route
                        path=(StaticSegment("events"), ParamSegment("tenant"), ParamSegment("id"))
                        view=pages::event_detail::EventDetailPage
                    />
                </Routes>
            </main>
        </Router>
    }
}
