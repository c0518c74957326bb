/**
 * The two signals of a VM exit inside the CPU: the object an exit throws to abandon the current
 * instruction, and the VM-entry result that says an injected event's delivery exited at once.
 */

/** `enter` result: the entry succeeded but delivering the injected event exited at once. */
export const ENTERED_AND_EXITED = "entered-and-exited";

/** Thrown (this one object) to abandon the current instruction for a VM exit. */
export const VMEXIT = { vmexit: true } as const;
