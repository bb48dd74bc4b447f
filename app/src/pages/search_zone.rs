//! The zone Search and the Dashboard show times in. It lives in the URL
//! (`tz`, see [`SearchParams::tz`]): UTC when absent, `browser` for the
//! reader's own zone, or an IANA name, so a shared link opens in the zone
//! it was shared in and the URL wins over any remembered preference. The
//! server's tz database turns the name into offsets ([`Zone`]); the pages
//! format with those by arithmetic, the same on the server and in WASM.

use leptos::prelude::*;

use crate::search_model::SearchError;
use crate::search_state::{SearchParams, BROWSER_ZONE};
use crate::timefmt::Zone;

/// Years of offsets sent for a zone: times older than this are shown with
/// the oldest offset sent (audit trails are kept for years, not decades).
/// Only the server function's body (compiled with `ssr`) uses them.
#[cfg(feature = "ssr")]
const ZONE_YEARS_BACK: i64 = 30;
#[cfg(feature = "ssr")]
const YEAR_MS: i64 = 366 * 24 * 3_600_000;

/// The offsets of `tz` ("UTC" or an IANA name) from 30 years ago to a
/// year ahead; a clear error naming an unknown zone.
#[server(endpoint = "zone")]
pub async fn zone_offsets(tz: String) -> Result<Zone, SearchError> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Zone::build(
        tz.trim(),
        now_ms.saturating_sub(ZONE_YEARS_BACK.saturating_mul(YEAR_MS)),
        now_ms.saturating_add(YEAR_MS),
    )
    .map_err(SearchError::BadRequest)
}

/// The zone a page shows, shared with its components through context.
#[derive(Clone, Copy)]
pub struct ShownZone {
    /// "UTC" or an IANA name: the URL's, with `browser` resolved once the
    /// page has hydrated (UTC before, as the server renders it).
    pub name: Memo<String>,
    /// Its offsets; UTC until they arrive or when the name is unknown.
    pub zone: Signal<Zone>,
    /// The browser's own zone, once hydrated.
    pub browser: RwSignal<Option<String>>,
    /// The server's refusal of an unknown zone, for the switch to show.
    pub error: Signal<Option<String>>,
}

/// Reads the zone from the page's URL state and provides it to the page's
/// components (results, charts, the switch).
pub fn provide_zone(params: Memo<SearchParams>) -> ShownZone {
    let browser = RwSignal::new(None::<String>);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| browser.set(browser_zone()));
    let name = Memo::new(move |_| params.read().zone_name(browser.get().as_deref()));
    let offsets = Resource::new(
        move || name.get(),
        |name| async move {
            if name == "UTC" {
                Ok(Zone::utc())
            } else {
                zone_offsets(name).await
            }
        },
    );
    let zone = Signal::derive(move || offsets.get().and_then(Result::ok).unwrap_or_default());
    let error = Signal::derive(move || offsets.get().and_then(Result::err).map(|e| e.to_string()));
    let shown = ShownZone {
        name,
        zone,
        browser,
        error,
    };
    provide_context(shown);
    shown
}

/// The zone in context, or UTC where a component is used without one.
pub fn shown_zone() -> Signal<Zone> {
    use_context::<ShownZone>().map_or_else(|| Signal::derive(Zone::utc), |s| s.zone)
}

/// The browser's IANA zone, e.g. "Europe/Berlin".
#[cfg(feature = "hydrate")]
pub fn browser_zone() -> Option<String> {
    let format = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new());
    js_sys::Reflect::get(&format.resolved_options(), &"timeZone".into())
        .ok()?
        .as_string()
}

/// The UTC / browser zone switch: a link to the same page in the other
/// zone, so it works before hydration (as `tz=browser`) and the URL says
/// which zone the page shows. Once hydrated it names the browser's zone,
/// which then goes into the URL, so the link shares that zone.
#[component]
pub fn ZoneSwitch(params: Memo<SearchParams>, page: &'static str) -> impl IntoView {
    let Some(shown) = use_context::<ShownZone>() else {
        return ().into_any();
    };
    let href = move || {
        let p = params.get();
        let target = if shown.name.get() == "UTC" {
            Some(
                shown
                    .browser
                    .get()
                    .unwrap_or_else(|| BROWSER_ZONE.to_string()),
            )
        } else {
            None
        };
        format!("{page}{}", p.with_zone(target).query_string())
    };
    let text = move || {
        let name = shown.name.get();
        if name == "UTC" {
            match shown.browser.get() {
                Some(here) if here != "UTC" => format!("Times in UTC (switch to {here})"),
                Some(_) => "Times in UTC".to_string(),
                None => "Times in UTC (switch to your zone)".to_string(),
            }
        } else {
            format!("Times in {name} (switch to UTC)")
        }
    };
    view! {
        <span class="zone-switch">
            <a href=href data-testid="zone-toggle" class="zone-link"
                title="Where times, chart hours and the weekday × hour chart are placed; kept in the link">
                {text}
            </a>
            // Inside a Transition: the refusal comes from a resource, which
            // the server must have read before it renders the switch.
            <Transition fallback=|| ()>
                {move || shown.error.get().map(|e| view! { <span class="query-error" role="alert">{e}</span> })}
            </Transition>
        </span>
    }
    .into_any()
}
