//! Weather: a connector's shape with config and a secret. It answers from a built-in
//! table (no network yet), in the install's configured units, and only when the
//! install has its API key; the key itself is never returned.
use tenantry_plugin_sdk::serde_json::{Value, json};
use tenantry_plugin_sdk::{Error, Plugin, config_json, export_plugin, secrets};

struct Weather;

/// Celsius by city, standing in for a weather API.
const TABLE: &[(&str, f64)] = &[("oslo", 4.0), ("lisbon", 19.0), ("nairobi", 24.0), ("tokyo", 12.0)];

impl Plugin for Weather {
    const ACTIONS: &'static [(&'static str, &'static str)] =
        &[("forecast", "Today's temperature in `city`, in the install's configured units")];
    fn call(_action: &str, input: Value) -> Result<Value, Error> {
        if secrets::get("api_key")?.is_none_or(|k| k.is_empty()) {
            return Err(Error::PermissionDenied(
                "no api_key: set it with `tenantry secret set @examples/weather api_key`".into(),
            ));
        }
        let city = input["city"].as_str().unwrap_or_default();
        let celsius = TABLE
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(city))
            .map(|(_, t)| *t)
            .ok_or_else(|| Error::NotFound(format!("no forecast for '{city}'")))?;
        let units = config_json()["units"].as_str().unwrap_or("metric").to_string();
        let temperature = if units == "imperial" { celsius * 9.0 / 5.0 + 32.0 } else { celsius };
        Ok(json!({"city": city, "units": units, "temperature": temperature}))
    }
}

export_plugin!(Weather);
