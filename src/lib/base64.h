/* base64 */
