//! Starting an example that runs at exactly 3 ranks, shared by the ring-group examples
//! (included with `#[path]`; not an example of its own).

/// Initialize zerorank and check that the job has 3 ranks; why not, if it failed.
pub fn initialize() -> Result<zerorank::Universe, String> {
    let universe = zerorank::initialize().map_err(|e| e.to_string())?;
    let n = universe.world().size();
    if n != 3 {
        return Err(format!("run it at 3 ranks, not {n}"));
    }
    Ok(universe)
}
