/**
 * @actas/react: the actas browser client for React (18 and later).
 *
 * Plain JavaScript without JSX, so it runs as shipped, with no build step.
 *
 * @example
 *   <ActasProvider frontendApi="https://auth.example.com">
 *     <ImpersonationBanner />
 *     <App />
 *   </ActasProvider>
 *
 *   function App() {
 *     const { isLoaded, isSignedIn, actor, getToken } = useAuth();
 *     const { readOnly } = useImpersonation();   // disable writes a read-only impersonator can't make
 *     ...
 *   }
 *
 * @module @actas/react
 */

import React from "react";
import {
  Actas,
  BANNER_COLORS,
  describeImpersonation,
  formatCountdown,
  mountAccessRequests,
  mountImpersonationNotice,
  nextTick,
} from "@actas/browser";

const h = React.createElement;

/** @typedef {import("@actas/browser").Auth} Auth */
/** @typedef {import("@actas/browser").Session} Session */

/** @type {React.Context<Actas | null | undefined>} */
const ActasContext = React.createContext(/** @type {Actas | null | undefined} */ (undefined));

// What useAuth() says before the client has loaded (Clerk's shape: undefined, not null).
const NOT_LOADED = Object.freeze({
  isLoaded: false,
  isSignedIn: undefined,
  userId: undefined,
  sessionId: undefined,
  actor: undefined,
  impersonation: undefined,
  getToken: async () => null,
  signOut: async () => {},
});

const noSubscription = () => () => {};

/**
 * Loads the actas client for everything inside it.
 *
 * @param {{
 *   frontendApi?: string,
 *   client?: Actas,
 *   options?: Omit<import("@actas/browser").Options, "frontendApi">,
 *   onError?: (error: unknown) => void,
 *   children?: React.ReactNode,
 * }} props `client`: an already-loaded `Actas` (tests, or sharing one with
 *   non-React code); otherwise one is loaded from `frontendApi` and destroyed on unmount.
 */
export function ActasProvider({ frontendApi, client, options, onError, children }) {
  const [loaded, setLoaded] = React.useState(/** @type {Actas | null} */ (null));
  const onErrorRef = React.useRef(onError);
  onErrorRef.current = onError;

  if (!client && !frontendApi) throw new TypeError("<ActasProvider> needs frontendApi (or client).");

  React.useEffect(() => {
    if (client || !frontendApi) return undefined;
    let cancelled = false;
    /** @type {Actas | null} */
    let instance = null;
    Actas.load({ ...options, frontendApi }).then(
      (actas) => {
        instance = actas;
        if (cancelled) actas.destroy();
        else setLoaded(actas);
      },
      (error) => {
        if (cancelled) return;
        if (onErrorRef.current) onErrorRef.current(error);
        else console.error("actas: could not load the client", error);
      },
    );
    return () => {
      cancelled = true;
      instance?.destroy();
      setLoaded(null);
    };
    // `options` is read once per frontendApi: a new object each render must not reload.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [frontendApi, client]);

  return h(ActasContext.Provider, { value: client ?? loaded }, children);
}

/**
 * The `Actas` instance, or null while it loads.
 *
 * @returns {Actas | null}
 */
export function useActas() {
  const actas = React.useContext(ActasContext);
  if (actas === undefined) throw new Error("useAuth, useSession and ImpersonationBanner must be used inside <ActasProvider>.");
  return actas;
}

/** @param {Actas | null} actas */
function useSubscribe(actas) {
  return React.useCallback(
    (/** @type {() => void} */ onChange) => (actas ? actas.on("change", onChange) : noSubscription()),
    [actas],
  );
}

/**
 * `{ isLoaded, isSignedIn, userId, sessionId, actor, getToken, signOut }`, as
 * Clerk's `useAuth()`; re-renders when any of them changes.
 *
 * @returns {Auth | typeof NOT_LOADED}
 */
export function useAuth() {
  const actas = useActas();
  const snapshot = () => (actas ? actas.getAuth() : NOT_LOADED);
  return React.useSyncExternalStore(useSubscribe(actas), snapshot, snapshot);
}

/**
 * Whether someone is acting as the user, and in which mode, for a UI that disables
 * what a read-only impersonator may not do (the backend refuses it anyway):
 * `{ isImpersonating, actor, mode: "read_only" | "full" | null, readOnly }`.
 *
 * @returns {{ isImpersonating: boolean, actor: import("@actas/browser").Actor | null,
 *             mode: "read_only" | "full" | null, readOnly: boolean }}
 */
export function useImpersonation() {
  const { actor, impersonation } = useAuth();
  return React.useMemo(() => ({
    isImpersonating: Boolean(actor),
    actor: actor ?? null,
    mode: impersonation?.mode ?? null,
    readOnly: Boolean(impersonation?.readOnly),
  }), [actor, impersonation]);
}

/**
 * The active session (with `user`, `actor`, `impersonation_reason`, `expire_at`).
 *
 * @returns {{ isLoaded: boolean, session: Session | null | undefined }}
 */
export function useSession() {
  const actas = useActas();
  const { isLoaded } = useAuth();
  const snapshot = () => (actas ? actas.session : undefined);
  const session = React.useSyncExternalStore(useSubscribe(actas), snapshot, snapshot);
  return React.useMemo(() => ({ isLoaded, session: isLoaded ? session : undefined }), [isLoaded, session]);
}

/** @param {Actas} actas */
function useCountdown(actas) {
  const [left, setLeft] = React.useState(() => actas.sessionTimeLeft() ?? 0);
  React.useEffect(() => {
    const { clock } = actas;
    /** @type {unknown} */
    let timer = null;
    const tick = () => {
      const ms = actas.sessionTimeLeft() ?? 0;
      setLeft(ms);
      timer = clock.setTimeout(tick, nextTick(ms));
    };
    tick();
    return () => clock.clearTimeout(timer);
  }, [actas]);
  return formatCountdown(left);
}

const bannerStyle = {
  position: "fixed", top: 0, left: 0, right: 0, zIndex: 2147483647,
  display: "flex", flexWrap: "wrap", alignItems: "center", justifyContent: "center",
  gap: "0.75em", padding: "0.5em 1em", margin: 0, boxSizing: "border-box",
  background: BANNER_COLORS.background, color: BANNER_COLORS.text,
  font: "600 15px/1.4 system-ui, sans-serif", textAlign: "center",
  boxShadow: "0 2px 6px rgba(0, 0, 0, 0.35)",
};

const buttonStyle = {
  background: BANNER_COLORS.text, color: BANNER_COLORS.background, font: "inherit",
  border: `2px solid ${BANNER_COLORS.text}`, borderRadius: "4px", padding: "0.2em 0.8em",
  cursor: "pointer", outline: "none",
};

const focusedButtonStyle = { ...buttonStyle, outline: `3px solid ${BANNER_COLORS.text}`, outlineOffset: "2px" };

/**
 * @param {{ actas: Actas, actor: import("@actas/browser").Actor, session: Session,
 *           onStopped?: () => void, onError?: (error: unknown) => void }} props
 */
function Banner({ actas, actor, session, onStopped, onError }) {
  const countdown = useCountdown(actas);
  const [focused, setFocused] = React.useState(false);
  const [stopping, setStopping] = React.useState(false);
  const { impersonation } = useAuth();
  const { message } = describeImpersonation(actor, session, impersonation ?? null);

  const stop = async () => {
    setStopping(true);
    try {
      await actas.stopImpersonating();
      onStopped?.();
    } catch (error) {
      if (onError) onError(error);
      else console.error("actas: could not stop impersonating", error);
    } finally {
      setStopping(false);
    }
  };

  return h(
    "div",
    { role: "region", "aria-label": "Impersonation", "data-testid": "actas-impersonation-banner", style: bannerStyle },
    // Announced once: the countdown is outside the live region, and React
    // leaves this text node alone while only the countdown changes.
    h("span", { "aria-live": "polite" }, message),
    h(
      "span",
      null,
      " · ends in ",
      h("span", { "data-testid": "actas-countdown", role: "timer", style: { fontVariantNumeric: "tabular-nums" } }, countdown),
    ),
    h(
      "button",
      {
        type: "button",
        "data-testid": "actas-stop-impersonating",
        disabled: stopping,
        onClick: stop,
        onFocus: () => setFocused(true),
        onBlur: () => setFocused(false),
        style: focused ? focusedButtonStyle : buttonStyle,
      },
      "Stop impersonating",
    ),
  );
}

/**
 * A fixed bar at the top of the page while someone is acting as the user:
 * who, by whom, why, a countdown to the session's hard end, and a
 * "Stop impersonating" button. Renders nothing otherwise.
 *
 * @param {{ onStopped?: () => void, onError?: (error: unknown) => void }} props
 */
export function ImpersonationBanner({ onStopped, onError } = {}) {
  const actas = useActas();
  const { actor } = useAuth();
  const { session } = useSession();
  if (!actas || !actor || !session) return null;
  // Keyed by session: a different impersonation starts a fresh banner (and announcement).
  return h(Banner, { key: session.id, actas, actor, session, onStopped, onError });
}

/**
 * The user's say in impersonations of their account: access requests waiting for an
 * answer (allow for a while, or deny), grants in force (revoke now), who may sign in as
 * them, and an offer of access to support. Shows only why it is unavailable while
 * someone is impersonating the user. The same DOM as the browser client's
 * `mountAccessRequests`, which it wraps.
 *
 * @param {{
 *   grantSeconds?: number,
 *   offerSeconds?: number,
 *   onChange?: (state: import("@actas/browser").AccessState) => void,
 *   onError?: (error: unknown) => void,
 * }} props
 */
export function AccessRequest({ grantSeconds, offerSeconds, onChange, onError } = {}) {
  const actas = useActas();
  const { isSignedIn, actor } = useAuth();
  const ref = React.useRef(/** @type {HTMLDivElement | null} */ (null));
  // Callbacks through a ref: a new function on each render must not remount the list.
  const callbacks = React.useRef({ onChange, onError });
  callbacks.current = { onChange, onError };
  React.useEffect(() => {
    if (!actas || !isSignedIn || !ref.current) return undefined;
    return mountAccessRequests(actas, {
      container: ref.current, grantSeconds, offerSeconds,
      onChange: (state) => callbacks.current.onChange?.(state),
      onError: (error) => callbacks.current.onError?.(error),
    });
  }, [actas, isSignedIn, actor?.sub, grantSeconds, offerSeconds]);
  return h("div", { ref, "data-testid": "actas-access-root" });
}

/**
 * Tells the signed-in user about impersonations of their account since they last
 * looked: `onNotice` is called, and (unless `toast={false}`) a dismissable note shows
 * who, when and why, linking to `historyUrl`. Wraps the browser client's
 * `mountImpersonationNotice`; shows nothing to an impersonator.
 *
 * @param {{
 *   historyUrl?: string,
 *   toast?: boolean,
 *   onNotice?: (notices: import("@actas/browser").ImpersonationNotice[]) => void,
 *   onError?: (error: unknown) => void,
 * }} props
 */
export function ImpersonationNotice({ historyUrl, toast, onNotice, onError } = {}) {
  const actas = useActas();
  const { isSignedIn, sessionId } = useAuth();
  const ref = React.useRef(/** @type {HTMLDivElement | null} */ (null));
  const callbacks = React.useRef({ onNotice, onError });
  callbacks.current = { onNotice, onError };
  React.useEffect(() => {
    if (!actas || !isSignedIn || !ref.current) return undefined;
    return mountImpersonationNotice(actas, {
      container: ref.current, historyUrl, toast,
      onNotice: (notices) => callbacks.current.onNotice?.(notices),
      onError: (error) => callbacks.current.onError?.(error),
    });
  }, [actas, isSignedIn, sessionId, historyUrl, toast]);
  return h("div", { ref, "data-testid": "actas-notice-root" });
}
