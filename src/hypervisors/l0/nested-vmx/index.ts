export { NestedVmxEngine } from "./engine.js";
