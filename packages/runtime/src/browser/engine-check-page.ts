/** Entry of the engine-check bundle: exposes `checkEngineOnPage` to the page as `covenantEngineCheck(navigator.gpu)`. */
import { checkEngineOnPage } from "./engine-check.ts"

// globalThis is typed without the DOM library in this workspace, hence the cast.
;(globalThis as unknown as { covenantEngineCheck: typeof checkEngineOnPage }).covenantEngineCheck = checkEngineOnPage
