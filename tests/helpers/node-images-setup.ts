/** Tests run stacks under Node: guest images other than the one run come from guests/images/. */
import "../../src/node-images.js";
