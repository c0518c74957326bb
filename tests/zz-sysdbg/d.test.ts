import { it } from "vitest";
import { sysCpu, runSys, frame, UDATA, USER_STACK, UCODE64 } from "../helpers/sys.js";
it("dbg", () => {
  const c = sysCpu(`push ${UDATA}\npush ${USER_STACK}\npush 2\npush ${UCODE64}\nlea rax, [rip + user]\npush rax\niretq\nuser:\nnop\nhlt`);
  const s = runSys(c);
  console.log(s, frame(c), c.cr2Lo.toString(16), c.cpl);
});
