//! `ctnet policy add|ls|rm`: flags parsed into a checked policy, the engine does the rest.

use ctnet_engine::model::policy::{Action, Policy, PolicyName, PortRange, Selector, Source};
use ctnet_engine::ops::policy::PolicyView;
use ctnet_engine::{Engine, Error, NetworkName, Result};

use crate::cli::{Format, PolicyAddArgs, PolicyCommand};
use crate::output;

pub fn dispatch(engine: &mut Engine, command: PolicyCommand) -> Result<()> {
    match command {
        PolicyCommand::Add(args) => add(engine, args),
        PolicyCommand::Ls(args) => list(engine, args.format),
        PolicyCommand::Rm { names } => {
            // Every name is checked before anything is removed, and must name a policy:
            // `policy rm a typo` fails without having removed a.
            let names = names
                .iter()
                .map(|n| PolicyName::new(n))
                .collect::<Result<Vec<_>>>()?;
            let known = engine.policies()?;
            if let Some(missing) = names
                .iter()
                .find(|n| !known.iter().any(|v| &v.policy.name == *n))
            {
                return Err(Error::not_found(
                    format!("policy {:?}", missing.as_str()),
                    "list the policies with `ctnet policy ls`",
                ));
            }
            for name in &names {
                let policy = engine.remove_policy(name)?;
                println!("{} {}", policy.name, policy.network);
            }
            Ok(())
        }
    }
}

/// The policy the flags describe, every part checked.
fn parse(args: &PolicyAddArgs) -> Result<Policy> {
    Ok(Policy {
        name: PolicyName::new(&args.name)?,
        network: NetworkName::new(&args.network)?,
        to: Selector::parse("--to", &args.to)?,
        from: args
            .from
            .iter()
            .map(|f| Source::parse(f))
            .collect::<Result<_>>()?,
        ports: args
            .ports
            .iter()
            .map(|p| PortRange::parse(p))
            .collect::<Result<_>>()?,
        action: if args.deny {
            Action::Deny
        } else {
            Action::Allow
        },
    })
}

fn add(engine: &mut Engine, args: PolicyAddArgs) -> Result<()> {
    let policy = parse(&args)?;
    let view = engine.add_policy(policy)?;
    if view.selected.is_empty() {
        // Allowed (containers may come later and are selected as they attach), but
        // worth saying: a typo in a selector looks just like this.
        eprintln!(
            "ctnet: policy {:?}: --to {} selects no container on network {:?} yet; it applies to matching containers as they attach",
            view.policy.name.as_str(),
            view.policy.to,
            view.policy.network.as_str()
        );
    }
    match args.format {
        Format::Json => output::json(&view),
        Format::Table => println!(
            "{} {} {} selects {}",
            view.policy.name,
            view.policy.network,
            describe(&view.policy),
            selected_text(&view)
        ),
    }
    Ok(())
}

/// `allow from role=web to port 5432/tcp`.
fn describe(policy: &Policy) -> String {
    let action = match policy.action {
        Action::Allow => "allow",
        Action::Deny => "deny",
    };
    let from = if policy.from.is_empty() {
        "anywhere".to_string()
    } else {
        join(&policy.from)
    };
    let ports = if policy.ports.is_empty() {
        "every port".to_string()
    } else {
        join(&policy.ports)
    };
    format!("{action} from {from} to {ports}")
}

/// Items joined with `,`; past [`SHOWN`] of them, how many more (`--format json` has
/// them all).
fn join<T: std::fmt::Display>(items: &[T]) -> String {
    let mut texts: Vec<String> = items.iter().take(SHOWN).map(T::to_string).collect();
    if items.len() > SHOWN {
        texts.push(format!("… ({} more)", items.len() - SHOWN));
    }
    texts.join(",")
}

/// How many ports, sources or containers a table row names.
const SHOWN: usize = 8;

fn selected_text(view: &PolicyView) -> String {
    if view.selected.is_empty() {
        "nothing yet".to_string()
    } else {
        join(&view.selected)
    }
}

fn list(engine: &mut Engine, format: Format) -> Result<()> {
    let views = engine.policies()?;
    match format {
        Format::Json => output::json(&views),
        Format::Table => output::table(
            &["NAME", "NETWORK", "TO", "RULE", "SELECTS", "ENTRIES"],
            &views
                .iter()
                .map(|v| {
                    vec![
                        v.policy.name.to_string(),
                        v.policy.network.to_string(),
                        v.policy.to.to_string(),
                        describe(&v.policy),
                        selected_text(v),
                        v.entries.to_string(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
    Ok(())
}
