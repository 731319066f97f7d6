//! `ctnet doctor`.

use ctnet_engine::observe::doctor::Severity;
use ctnet_engine::{Engine, Error, ErrorKind, Result};

use crate::cli::Format;
use crate::output;

pub fn doctor(engine: &mut Engine, format: Format) -> Result<()> {
    let findings = engine.doctor()?;
    match format {
        Format::Json => output::json(&findings),
        Format::Table => output::table(
            &["STATUS", "CHECK", "FOUND", "FIX"],
            &findings
                .iter()
                .map(|f| {
                    vec![
                        format!("{:?}", f.severity).to_lowercase(),
                        f.check.clone(),
                        f.detail.clone(),
                        f.fix.clone(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
    let problems = findings
        .iter()
        .filter(|f| f.severity == Severity::Problem)
        .count();
    if problems > 0 {
        return Err(Error::new(
            ErrorKind::Conflict,
            "this host",
            format!("has {problems} problem(s) that drop or misroute ctnet traffic"),
            "apply the fixes listed above",
        ));
    }
    Ok(())
}
