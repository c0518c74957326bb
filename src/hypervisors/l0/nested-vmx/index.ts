export { NestedVmxEngine, type NestedVmxOptions } from "./engine.js";
