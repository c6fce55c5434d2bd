/* The placement preview behaves as a visitor with Global Privacy Control: the widget sends no events and keeps
   no session, so previews never count as visits. Loaded before /w.js, which reads the flag when it starts. */
try {
  Object.defineProperty(navigator, 'globalPrivacyControl', { value: true, configurable: true });
} catch (e) { /* the widget then behaves as for any visitor; its events are refused for this origin anyway */ }
